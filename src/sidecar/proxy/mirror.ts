// Request mirroring (Envoy's request_mirror_policies, Gateway API's RequestMirror filter): for the
// configured fraction of requests, a copy goes to another cluster, fire and forget. The copy's
// authority gets a `-shadow` suffix (before any port, as Envoy does) so the mirror target can
// tell shadow traffic apart; its response is read and dropped. The client's request never waits
// for a mirror: the copy of the body is written only while the mirror keeps up, and a mirror
// that falls more than MIRROR_BUFFER_BYTES behind, fails, or outlives its time is cut alone.

import type { Logger } from '../../log.js';
import type { HeaderMap } from './header-map.js';
import type { RequestContext } from './request-context.js';
import { endpointTls, startUpstream, type UpstreamHead, type UpstreamRequest } from './upstream-request.js';
import type { UpstreamPool } from './upstream-pool.js';

/** How far a mirror's request body may fall behind the client's before the mirror is cut. */
export const MIRROR_BUFFER_BYTES = 1024 * 1024;

export interface MirrorDeps {
  pool: UpstreamPool;
  logger: Logger;
  /** Cap on a mirror's whole life when the route sets no timeout. */
  streamIdleTimeoutMs: number;
}

/** The started copies of one request: they take its body as it streams past. */
export interface Mirrors {
  write(chunk: Buffer): void;
  finish(trailers: HeaderMap | undefined): void;
  /** The client's request was cut: its copies are cut too (they never got a whole body). */
  abort(): void;
}

/** `backend` → `backend-shadow`, `backend:8080` → `backend-shadow:8080`, `[::1]:80` unchanged in form. */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon > authority.lastIndexOf(']') && colon > 0)
    return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/** Starts the copies this request gets, if any; `random` is injectable for tests. */
export function startMirrors(
  ctx: RequestContext,
  deps: MirrorDeps,
  random: () => number = Math.random,
): Mirrors | undefined {
  const policies = ctx.forward?.mirrors;
  if (!policies || policies.length === 0) return undefined;
  const started: Mirror[] = [];
  for (const policy of policies) {
    if (policy.fraction < 1 && random() >= policy.fraction) continue;
    const m = startMirror(ctx, policy.cluster, deps);
    if (m) started.push(m);
  }
  if (started.length === 0) return undefined;
  return {
    write(chunk) {
      for (const m of started) m.write(chunk);
    },
    finish(trailers) {
      for (const m of started) m.finish(trailers);
    },
    abort() {
      for (const m of started) m.cut('the client request was cut');
    },
  };
}

interface Mirror {
  write(chunk: Buffer): void;
  finish(trailers: HeaderMap | undefined): void;
  cut(why: string): void;
}

function startMirror(ctx: RequestContext, clusterName: string, deps: MirrorDeps): Mirror | undefined {
  const log = (msg: string, extra: Record<string, unknown> = {}): void =>
    deps.logger.debug({ cluster: clusterName, requestId: ctx.requestId, ...extra }, msg);
  const cluster = ctx.snapshot.clusters.get(clusterName);
  const protocol = cluster?.cluster.protocol;
  if (!cluster || protocol === 'tcp' || (ctx.grpc && protocol !== 'http2')) {
    log('mirror skipped: no usable cluster', { protocol });
    return undefined;
  }
  const endpoint = cluster.lb.pick();
  if (!endpoint) {
    log('mirror skipped: no healthy endpoint');
    return undefined;
  }
  const headers: HeaderMap = { ...ctx.headers };
  // The client's 100-continue handshake is with the primary upstream; the copy just sends.
  delete headers['expect'];
  const head: UpstreamHead = {
    method: ctx.method,
    path: ctx.path,
    authority: shadowAuthority(ctx.authority),
    scheme: 'http',
    headers,
    hasBody: ctx.hasBody,
    expectContinue: false,
  };
  const settle = endpoint.stats.begin();
  const startedAt = performance.now();
  let over = false;
  let timer: NodeJS.Timeout | undefined;
  let req: UpstreamRequest | undefined;
  const end = (ok: boolean, latencyMs?: number): void => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    settle({ ok, latencyMs });
  };
  const cut = (why: string): void => {
    if (over) return;
    log(`mirror cut: ${why}`);
    req?.abort();
    end(false);
  };
  try {
    req = startUpstream(
      deps.pool,
      {
        host: endpoint.endpoint.host,
        port: endpoint.endpoint.port,
        protocol: protocol === 'http2' ? 'http2' : 'http1',
        connectTimeoutMs: cluster.cluster.connectTimeoutMs,
        tls: endpointTls(cluster.cluster, endpoint.endpoint),
      },
      head,
      {
        onContinue: () => {},
        onResponse: (res) => {
          const latencyMs = performance.now() - startedAt;
          if (!res.body) return end(true, latencyMs);
          res.body.once('end', () => end(true, latencyMs));
          res.body.once('error', () => end(false));
          res.body.resume();
        },
        onFailure: (f) => {
          if (over) return;
          log('mirror failed', { err: f.message });
          end(false);
        },
      },
    );
  } catch (err) {
    log('mirror not sent', { err: (err as Error).message });
    end(false);
    return undefined;
  }
  const limitMs = ctx.forward?.timeoutMs || deps.streamIdleTimeoutMs;
  if (limitMs > 0) timer = setTimeout(() => cut(`no complete response within ${limitMs} ms`), limitMs);
  timer?.unref();
  if (!ctx.hasBody) req.finish();
  const upstream = req;
  return {
    write(chunk) {
      if (over) return;
      if (upstream.body.writableLength > MIRROR_BUFFER_BYTES) return cut('it fell behind the client');
      upstream.body.write(chunk);
    },
    finish(trailers) {
      if (!over && ctx.hasBody) upstream.finish(trailers);
    },
    cut,
  };
}
