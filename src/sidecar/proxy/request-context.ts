// What the filters of one request share: the config it started on (kept for its whole life, so
// a config swap never changes a request half-way), its head as rewritten so far, and what
// routing and load balancing decided.

import type { ForwardAction, HttpListener, Route, RuntimeConfig, VirtualHost } from '../runtime-config.js';
import type { ActiveCluster } from './cluster-manager.js';
import type { HeaderMap } from './header-map.js';
import type { LbEndpoint } from './load-balancer.js';
import type { PeerIdentity } from './peer-identity.js';
import type { RbacStats } from './rbac.js';

/** One applied config with its pickable clusters; replaced whole on every apply(). */
export interface ConfigSnapshot {
  config: RuntimeConfig;
  clusters: Map<string, ActiveCluster>;
  /** Authorization counters; the same object across snapshots, so a swap keeps the counts. */
  rbacStats?: RbacStats;
}

export interface RequestContext {
  readonly listener: HttpListener;
  readonly snapshot: ConfigSnapshot;
  readonly protocol: 'http1' | 'http2';
  readonly remoteAddress: string;
  /** The client's verified SPIFFE identity when it came over mutual TLS; undefined otherwise. */
  readonly peer?: PeerIdentity | undefined;
  /** This workload's own SPIFFE ID (XFCC's By), once it has an SVID. */
  readonly localSpiffeId?: string | undefined;
  /** An HTTP/1.1 Upgrade (WebSocket) to be tunnelled rather than forwarded as a message. */
  readonly upgrade: boolean;
  /** gRPC over HTTP/2: gets gRPC-shaped local replies and needs an HTTP/2 cluster. */
  readonly grpc: boolean;
  readonly hasBody: boolean;
  method: string;
  authority: string;
  path: string;
  scheme: string;
  headers: HeaderMap;
  requestId?: string;
  virtualHost?: VirtualHost;
  route?: Route;
  forward?: ForwardAction;
  target?: { cluster: ActiveCluster; endpoint: LbEndpoint };
}

export interface ResponseHead {
  status: number;
  headers: HeaderMap;
}
