// Carries one routed request to its upstream endpoint and the response back, streaming both
// bodies with backpressure (pipe: a slow reader pauses the writer, so memory stays flat whatever
// the body size), relaying 100-continue and trailers, propagating cancellation both ways, and
// enforcing the route timeout and the stream idle timeout. Also answers local replies.

import http2 from 'node:http2';
import type { Logger } from '../../log.js';
import type { Downstream } from './downstream.js';
import { runResponseFilters } from './filter-chain.js';
import { requestDeadlines, type Deadline } from './deadlines.js';
import { FAILURE_PENALTY_MS } from './load-balancer.js';
import { proxyError, renderLocalReply, type LocalReply } from './local-reply.js';
import { startMirrors } from './mirror.js';
import type { RequestContext } from './request-context.js';
import {
  endpointTls,
  startUpstream,
  type UpstreamFailure,
  type UpstreamResponse,
} from './upstream-request.js';
import type { UpstreamPool } from './upstream-pool.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;
const EMPTY = Buffer.alloc(0);

export interface ForwardDeps {
  pool: UpstreamPool;
  logger: Logger;
  streamIdleTimeoutMs: number;
}

export function sendLocalReply(ds: Downstream, ctx: RequestContext | undefined, reply: LocalReply): void {
  if (ds.headersSent) {
    ds.reset(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const rendered = renderLocalReply(reply, ctx?.grpc ?? false, ctx?.requestId);
  if (ctx) runResponseFilters(ctx, rendered);
  // The request body is not wanted any more; read and drop it so the client is not stalled.
  ds.body.resume();
  try {
    ds.respond(rendered.status, rendered.headers, rendered.body.length === 0);
    if (rendered.body.length > 0) {
      ds.responseBody.write(rendered.body);
      ds.end();
    }
  } catch {
    ds.reset(NGHTTP2_INTERNAL_ERROR);
  }
}

function failureReply(f: UpstreamFailure, ctx: RequestContext): LocalReply {
  const cluster = ctx.target?.cluster.cluster.name ?? '';
  const ep = ctx.target ? `${ctx.target.endpoint.endpoint.host}:${ctx.target.endpoint.endpoint.port}` : '';
  if (f.kind === 'connect') {
    return proxyError(
      503,
      'WEFT_E_PROXY_UPSTREAM_CONNECT',
      `upstream connect error: cluster "${cluster}" endpoint ${ep}: ${f.message}`,
    );
  }
  return proxyError(
    502,
    'WEFT_E_PROXY_UPSTREAM_RESET',
    `upstream reset before response headers: cluster "${cluster}" endpoint ${ep}: ${f.message}`,
  );
}

/** Forwards a request whose filters all continued (ctx.target is set). */
export function forward(ds: Downstream, ctx: RequestContext, deps: ForwardDeps): void {
  const target = ctx.target;
  if (!target) throw new Error('forward() needs a routed request');
  const { endpoint, cluster } = target;
  const settle = endpoint.stats.begin();
  const deadlines = requestDeadlines;
  const startedAt = deadlines.now();
  let latencyMs: number | undefined;
  let penaltyMs: number | undefined;
  let over = false;
  let requestDone = !ds.hasBody;
  // Both timeouts share one deadline: the route's (until the response is complete) and the
  // stream's idle one, measured from the last byte either way. A touch only moves lastActive;
  // a deadline that finds the stream touched since it was set sets the next one.
  const timeoutMs = ctx.forward?.timeoutMs ?? 0;
  let routeAt = timeoutMs > 0 ? startedAt + timeoutMs : Infinity;
  const idleMs = ctx.listener.streamIdleTimeoutMs ?? deps.streamIdleTimeoutMs;
  let lastActive = startedAt;
  let deadline: Deadline | undefined;

  const finish = (ok: boolean): void => {
    if (over) return;
    over = true;
    deadlines.cancel(deadline);
    deadline = undefined;
    settle({ ok, latencyMs, penaltyMs });
  };

  /** `blame`: the endpoint failed to answer in time, which its latency estimate must show. */
  const failLocally = (reply: LocalReply, upstreamRst?: number, blame = 0): void => {
    if (over) return;
    if (blame > 0) penaltyMs = Math.max(blame, deadlines.now() - startedAt);
    upstream.abort();
    if (ds.headersSent) {
      // Too late for a status: cut the client's stream, passing on the upstream's RST code.
      ds.reset(
        upstreamRst !== undefined && upstreamRst !== NGHTTP2_NO_ERROR ? upstreamRst : NGHTTP2_INTERNAL_ERROR,
      );
    } else sendLocalReply(ds, ctx, reply);
    finish(false);
  };

  const schedule = (): void => {
    const at = idleMs > 0 ? Math.min(routeAt, lastActive + idleMs) : routeAt;
    if (at !== Infinity) deadline = deadlines.add(at, onDeadline);
  };
  const onDeadline = (now: number): void => {
    deadline = undefined;
    if (over) return;
    if (now >= routeAt) {
      failLocally(
        proxyError(
          504,
          'WEFT_E_PROXY_UPSTREAM_TIMEOUT',
          `upstream request timeout: no complete response from cluster "${cluster.cluster.name}" within the route's ${timeoutMs} ms`,
        ),
        NGHTTP2_CANCEL,
        timeoutMs,
      );
    } else if (idleMs > 0 && now - lastActive >= idleMs) {
      const status = requestDone ? 504 : 408;
      failLocally(
        proxyError(
          status,
          'WEFT_E_PROXY_STREAM_IDLE_TIMEOUT',
          `stream idle timeout: no bytes in either direction for ${idleMs} ms (cluster "${cluster.cluster.name}")`,
        ),
        undefined,
        requestDone ? idleMs : 0,
      );
    } else schedule(); // touched since: the stream has until its last byte plus idleMs
  };
  const touch = (): void => {
    if (idleMs > 0 && !over) lastActive = deadlines.now();
  };

  const onResponse = (res: UpstreamResponse): void => {
    if (over) {
      res.body?.resume();
      return;
    }
    latencyMs = deadlines.now() - startedAt;
    lastActive = startedAt + latencyMs;
    const head = { status: res.status, headers: res.headers };
    runResponseFilters(ctx, head);
    const body = res.body;
    try {
      // A body already in hand goes out with the head in one write; no stream to set up.
      if (body === undefined) ds.respondWhole(head.status, head.headers, res.whole ?? EMPTY);
      else ds.respond(head.status, head.headers, res.endStream);
    } catch (err) {
      deps.logger.debug({ err: (err as Error).message }, 'response head rejected by the downstream codec');
      failLocally(
        proxyError(
          502,
          'WEFT_E_PROXY_UPSTREAM_RESET',
          `invalid upstream response: ${(err as Error).message}`,
        ),
      );
      return;
    }
    if (body === undefined) {
      routeAt = Infinity; // the response is complete; only the stream's idle timeout is left
      return;
    }
    if (res.endStream) {
      finish(true);
      return;
    }
    body.on('data', touch);
    body.pipe(ds.responseBody, { end: false });
    body.once('end', () => {
      if (over) return;
      ds.end(res.trailers());
      // Route timeout covers the whole response; it is done.
      routeAt = Infinity;
    });
  };

  let upstream: ReturnType<typeof startUpstream>;
  try {
    upstream = startUpstream(
      deps.pool,
      {
        host: endpoint.endpoint.host,
        port: endpoint.endpoint.port,
        protocol: cluster.cluster.protocol === 'http2' ? 'http2' : 'http1',
        connectTimeoutMs: cluster.cluster.connectTimeoutMs,
        tls: endpointTls(cluster.cluster, endpoint.endpoint),
      },
      {
        method: ctx.method,
        path: ctx.path,
        authority: ctx.authority,
        scheme: 'http',
        headers: ctx.headers,
        hasBody: ds.hasBody,
        expectContinue: ctx.headers['expect']?.some((v) => v.toLowerCase() === '100-continue') ?? false,
      },
      {
        onContinue: () => {
          if (!over) ds.sendContinue();
        },
        onResponse,
        onFailure: (f) =>
          failLocally(
            failureReply(f, ctx),
            f.rstCode,
            cluster.cluster.connectTimeoutMs || FAILURE_PENALTY_MS,
          ),
      },
    );
  } catch (err) {
    // A head the upstream codec refuses: nothing was sent, but the pick was counted as load.
    finish(false);
    throw err;
  }

  // Copies for the route's mirrors: they see the body as it passes and never hold it up.
  const mirrors = startMirrors(ctx, deps);

  ds.onDone((complete) => {
    if (!complete && !over) upstream.abort(); // the client went away: cancel upstream work too
    if (!requestDone) mirrors?.abort();
    finish(complete);
  });

  if (!over) schedule();

  if (ds.hasBody) {
    ds.body.on('data', touch);
    if (mirrors) ds.body.on('data', (chunk: Buffer) => mirrors.write(chunk));
    ds.body.pipe(upstream.body, { end: false });
    ds.body.once('end', () => {
      requestDone = true;
      const trailers = ds.requestTrailers();
      mirrors?.finish(trailers);
      if (!over) upstream.finish(trailers);
    });
  } else upstream.finish();
}
