// The proxy's resource limits and timeouts, with the defaults used when neither the listener's
// config nor the embedder says otherwise. Kept in one place so docs and code cannot drift.

export interface ProxyLimits {
  /** Concurrent downstream connections per listener; more are refused (closed on accept). */
  maxConnectionsPerListener: number;
  /** Request line + headers (HTTP/1.1) or the HPACK-accounted header list (HTTP/2) → 431. */
  maxRequestHeadersBytes: number;
  /** No bytes in either direction of one request for this long → 408 or 504 (0 = off). */
  streamIdleTimeoutMs: number;
  /** Time allowed to receive the whole request from the client (0 = off), as Envoy's. */
  requestTimeoutMs: number;
  /** Time allowed for the request headers to arrive on HTTP/1.1 (slowloris guard). */
  headersTimeoutMs: number;
  /** Idle HTTP/1.1 keep-alive connections from clients are closed after this long. */
  downstreamKeepAliveTimeoutMs: number;
  /** Concurrent streams one downstream HTTP/2 connection may open. */
  maxConcurrentStreams: number;
  /** HTTP/1.1 connections to one endpoint (requests beyond it queue in the agent). */
  upstreamMaxSocketsPerEndpoint: number;
  /** Idle pooled HTTP/1.1 connections kept per endpoint. */
  upstreamMaxIdleSocketsPerEndpoint: number;
  /**
   * Idle pooled upstream connections are closed after this long. Shorter than the downstream
   * keep-alive timeout so that, between two Weft proxies, the client side closes first and a
   * request never races the server closing the connection under it.
   */
  upstreamIdleTimeoutMs: number;
  /** A new connection must send its first bytes within this long (codec detection). */
  firstByteTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<ProxyLimits> = Object.freeze({
  maxConnectionsPerListener: 10_000,
  maxRequestHeadersBytes: 60 * 1024,
  streamIdleTimeoutMs: 5 * 60_000,
  requestTimeoutMs: 0,
  headersTimeoutMs: 60_000,
  downstreamKeepAliveTimeoutMs: 60_000,
  maxConcurrentStreams: 1_000,
  upstreamMaxSocketsPerEndpoint: 1_024,
  upstreamMaxIdleSocketsPerEndpoint: 64,
  upstreamIdleTimeoutMs: 30_000,
  firstByteTimeoutMs: 60_000,
});

export function resolveLimits(overrides: Partial<ProxyLimits> | undefined): ProxyLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}
