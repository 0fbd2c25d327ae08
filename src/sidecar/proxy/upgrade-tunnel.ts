// HTTP/1.1 Upgrade (WebSocket and friends): the request goes through the same filter chain as
// any other, then to the endpoint on a dedicated connection; a 101 from the upstream is relayed
// and from then on the two sockets are piped raw, both ways. Any other answer is relayed as a
// plain response and the connection closed (it cannot go back into a keep-alive pool).

import type { TlsCredentials } from './mtls.js';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log.js';
import { runResponseFilters } from './filter-chain.js';
import { fromDistinct, toOutgoing, type HeaderMap } from './header-map.js';
import { FAILURE_PENALTY_MS } from './load-balancer.js';
import { proxyError, renderLocalReply, type LocalReply } from './local-reply.js';
import type { RequestContext } from './request-context.js';

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
}

function headerLines(headers: HeaderMap): string {
  let s = '';
  for (const [name, values] of Object.entries(headers)) {
    for (const v of values) if (!/[\r\n]/.test(v)) s += `${name}: ${v}\r\n`;
  }
  return s;
}

/** A complete response written straight to a socket that no HTTP server owns any more. */
export function writeRawReply(socket: Duplex, reply: LocalReply, ctx?: RequestContext): void {
  const rendered = renderLocalReply(reply, false, ctx?.requestId);
  if (ctx) runResponseFilters(ctx, rendered);
  rendered.headers['connection'] = ['close'];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    Buffer.concat([
      Buffer.from(statusLine(rendered.status) + headerLines(rendered.headers) + '\r\n'),
      rendered.body,
    ]),
  );
  // Read (and drop) until the client's FIN, so that the half-open socket closes (an Upgrade's
  // socket is handed over paused).
  socket.resume();
}

/** `streamIdleTimeoutMs`: the proxy's default, for a listener that sets none. */
export function tunnelUpgrade(
  ctx: RequestContext,
  socket: Duplex,
  head: Buffer,
  logger: Logger,
  streamIdleTimeoutMs: number,
  credentials: TlsCredentials,
): void {
  const target = ctx.target;
  if (!target) throw new Error('tunnelUpgrade() needs a routed request');
  const { endpoint, cluster } = target;
  const settle = endpoint.stats.begin();
  const startedAt = performance.now();
  const headers = toOutgoing(ctx.headers);
  headers['host'] = ctx.authority;
  let req: http.ClientRequest;
  try {
    req = http.request({
      host: endpoint.endpoint.host,
      port: endpoint.endpoint.port,
      method: ctx.method,
      path: ctx.path,
      headers,
      setHost: false,
      // A dedicated connection either way: Node uses createConnection only without an agent.
      ...(endpoint.endpoint.tls && cluster.cluster.tls
        ? {
            createConnection: () =>
              credentials.connect(endpoint.endpoint.host, endpoint.endpoint.port, cluster.cluster.tls!, [
                'http/1.1',
              ]),
          }
        : { agent: false }),
    });
  } catch (err) {
    // A head Node refuses to write: nothing was sent, but the pick was counted as load.
    settle({ ok: false });
    throw err;
  }
  let connected = false;
  let upgraded = false;
  let settled = false;
  const done = (ok: boolean, penaltyMs?: number): void => {
    if (settled) return;
    settled = true;
    const elapsed = performance.now() - startedAt;
    settle(
      penaltyMs === undefined ? { ok, latencyMs: elapsed } : { ok, penaltyMs: Math.max(penaltyMs, elapsed) },
    );
  };
  const timeoutMs = cluster.cluster.connectTimeoutMs;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => req.destroy(new Error(`connect timeout after ${timeoutMs} ms`)), timeoutMs)
      : undefined;
  // Until the upstream answers the Upgrade, the client waits on us: bound the wait by the
  // route timeout or the stream idle timeout (whichever is on and shorter), or an upstream that
  // accepts and stays silent would pin the client and hold up drain for good.
  const routeMs = ctx.forward?.timeoutMs ?? 0;
  const idleMs = ctx.listener.streamIdleTimeoutMs ?? streamIdleTimeoutMs;
  const waitMs = routeMs > 0 && (idleMs <= 0 || routeMs <= idleMs) ? routeMs : idleMs;
  let answered = false;
  let relaying = false;
  const answerTimer =
    waitMs > 0
      ? setTimeout(() => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          req.destroy();
          const name = cluster.cluster.name;
          writeRawReply(
            socket,
            waitMs === routeMs
              ? proxyError(
                  504,
                  'WEFT_E_PROXY_UPSTREAM_TIMEOUT',
                  `upstream request timeout: no answer to the upgrade from cluster "${name}" within the route's ${waitMs} ms`,
                )
              : proxyError(
                  504,
                  'WEFT_E_PROXY_STREAM_IDLE_TIMEOUT',
                  `stream idle timeout: no answer to the upgrade for ${waitMs} ms (cluster "${name}")`,
                ),
            ctx,
          );
          done(false, waitMs);
        }, waitMs)
      : undefined;
  req.on('socket', (s) => {
    s.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
  });
  socket.on('error', () => req.destroy());
  socket.on('close', () => {
    clearTimeout(answerTimer);
    req.destroy();
    done(upgraded);
  });

  req.on('upgrade', (res, upstream, upstreamHead) => {
    if (answered) return void upstream.destroy();
    answered = true;
    clearTimeout(answerTimer);
    upgraded = true;
    const resHead = { status: res.statusCode ?? 101, headers: fromDistinct(res.headersDistinct) };
    // Upgrade/Connection are the point of a 101; everything else goes through the response filters.
    const upgrade = resHead.headers['upgrade'];
    runResponseFilters(ctx, resHead);
    if (upgrade) resHead.headers['upgrade'] = upgrade;
    resHead.headers['connection'] = ['upgrade'];
    socket.write(statusLine(resHead.status) + headerLines(resHead.headers) + '\r\n');
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstream.write(head);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.pipe(socket);
    socket.pipe(upstream);
  });

  req.on('response', (res) => {
    // Refused upgrade: relay the answer, close-delimited, and end the connection.
    if (answered) return void res.destroy();
    answered = true;
    relaying = true;
    clearTimeout(answerTimer);
    const resHead = { status: res.statusCode ?? 502, headers: fromDistinct(res.headersDistinct) };
    runResponseFilters(ctx, resHead);
    delete resHead.headers['content-length'];
    resHead.headers['connection'] = ['close'];
    socket.write(statusLine(resHead.status) + headerLines(resHead.headers) + '\r\n');
    res.pipe(socket);
    res.on('end', () => done(true));
  });

  req.on('error', (err) => {
    clearTimeout(timer);
    clearTimeout(answerTimer);
    if (answered) {
      // A refused upgrade's body broke off: the client cannot tell from a close-delimited end.
      if (relaying) socket.destroy();
      return;
    }
    answered = true;
    logger.debug({ err: err.message }, 'upgrade: upstream failed');
    const ep = `${endpoint.endpoint.host}:${endpoint.endpoint.port}`;
    writeRawReply(
      socket,
      connected
        ? proxyError(
            502,
            'WEFT_E_PROXY_UPSTREAM_RESET',
            `upstream reset before the upgrade: cluster "${cluster.cluster.name}" endpoint ${ep}: ${err.message}`,
          )
        : proxyError(
            503,
            'WEFT_E_PROXY_UPSTREAM_CONNECT',
            `upstream connect error: cluster "${cluster.cluster.name}" endpoint ${ep}: ${err.message}`,
          ),
      ctx,
    );
    done(false, cluster.cluster.connectTimeoutMs || FAILURE_PENALTY_MS);
  });
  req.end();
}
