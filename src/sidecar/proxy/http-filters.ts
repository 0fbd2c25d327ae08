// The HTTP filters of the request pipeline, each one concern. A filter looks at the request
// head and either lets it continue or answers it with a local reply; on the way back it may
// edit the response head. Their order is decided in filter-chain.ts, not here.

import {
  appendForwardedFor,
  applyHeaderMutations,
  ensureRequestId,
  redirectLocation,
  rewritePath,
  setForwardedProto,
  stripHopByHop,
} from './header-filters.js';
import { proxyError, type LocalReply } from './local-reply.js';
import { normalizePath } from './path-normalize.js';
import { authorize, denialMessage } from './rbac.js';
import { pickWeightedCluster, selectRoute, selectVirtualHost, splitAuthority } from './router.js';
import type { RequestContext, ResponseHead } from './request-context.js';

export interface HttpFilter {
  readonly name: string;
  /** Returns a LocalReply to stop the chain and answer the client. */
  onRequest(ctx: RequestContext): LocalReply | undefined;
  /** Response headers on their way to the client, upstream or local; called in reverse order. */
  onResponse?(ctx: RequestContext, res: ResponseHead): void;
}

/** Connection-scoped headers never cross the proxy, in either direction. */
export const hopByHopFilter: HttpFilter = {
  name: 'hop-by-hop',
  onRequest(ctx) {
    stripHopByHop(ctx.headers, { keepTeTrailers: true, keepUpgrade: ctx.upgrade });
    return undefined;
  },
  onResponse(ctx, res) {
    stripHopByHop(res.headers, { keepTeTrailers: false, keepUpgrade: false });
  },
};

export const requestIdFilter: HttpFilter = {
  name: 'request-id',
  onRequest(ctx) {
    ctx.requestId = ensureRequestId(ctx.headers);
    return undefined;
  },
};

/**
 * The listener's path normalization (Envoy's HCM normalize_path, merge_slashes and escaped-slash
 * action): from here on RBAC, routing and the upstream see the normalized path. A path that
 * cannot be normalized, or has a fragment, is a 400; UNESCAPE_AND_REDIRECT answers a 307 to the
 * unescaped path, except to gRPC, which cannot follow it and gets the 400 (as in Envoy).
 */
export const pathFilter: HttpFilter = {
  name: 'path',
  onRequest(ctx) {
    const verdict = normalizePath(ctx.path, ctx.listener.pathNormalization);
    if (typeof verdict === 'string') {
      ctx.path = verdict;
      return undefined;
    }
    if ('reject' in verdict)
      return proxyError(400, 'WEFT_E_PROXY_BAD_REQUEST', `bad request: ${verdict.reject}`);
    if (ctx.grpc)
      return proxyError(
        400,
        'WEFT_E_PROXY_BAD_REQUEST',
        'bad request: the request path has an escaped slash (%2F or %5C) and gRPC cannot follow the redirect to its unescaped form',
      );
    return { status: 307, body: '', headers: { location: [verdict.redirect] } };
  },
};

/** The listener's RBAC filters: 403 naming the policy that denied, or that no ALLOW policy matched. */
export const rbacFilter: HttpFilter = {
  name: 'rbac',
  onRequest(ctx) {
    const rbac = ctx.listener.rbac;
    if (rbac === undefined || rbac.length === 0) return undefined;
    const input = { peer: ctx.peer, destinationPort: ctx.listener.port, request: ctx };
    const decision = authorize(rbac, input, ctx.snapshot.rbacStats);
    if (decision.allowed) return undefined;
    return proxyError(403, 'WEFT_E_PROXY_RBAC_DENIED', denialMessage(decision));
  },
};

export const forwardedFilter: HttpFilter = {
  name: 'x-forwarded',
  onRequest(ctx) {
    if (ctx.remoteAddress !== '') appendForwardedFor(ctx.headers, ctx.remoteAddress);
    // The scheme of the connection the request arrived on, never what the client claims (an
    // absolute-form `https://…` URI or an HTTP/2 `:scheme`): https only for mTLS (which every
    // TLS connection to the sidecar is).
    setForwardedProto(ctx.headers, ctx.peer ? 'https' : 'http');
    return undefined;
  },
};

/**
 * `x-forwarded-client-cert` and the proxy's own `x-weft-*` headers are the mesh's word, never
 * the sender's: whatever arrives (from the app on outbound, from a peer on inbound) is removed.
 * An mTLS request then gets Envoy's XFCC for the app: By (this workload), Hash (of the peer
 * certificate), URI (the peer's SPIFFE ID).
 */
export const clientCertFilter: HttpFilter = {
  name: 'client-cert',
  onRequest(ctx) {
    delete ctx.headers['x-forwarded-client-cert'];
    for (const name of Object.keys(ctx.headers)) if (name.startsWith('x-weft-')) delete ctx.headers[name];
    const peer = ctx.peer;
    if (peer && ctx.listener.direction === 'inbound') {
      const by = ctx.localSpiffeId === undefined ? '' : `By=${ctx.localSpiffeId};`;
      ctx.headers['x-forwarded-client-cert'] = [`${by}Hash=${peer.certSha256};URI=${peer.spiffeId}`];
    }
    return undefined;
  },
};

/** Virtual host and route; redirects and direct responses are answered here. */
export const routerFilter: HttpFilter = {
  name: 'router',
  onRequest(ctx) {
    const tableName = ctx.listener.routeConfig;
    const table = ctx.snapshot.config.routes.get(tableName);
    if (!table) {
      return proxyError(
        404,
        'WEFT_E_PROXY_NO_ROUTE',
        `no route: listener "${ctx.listener.name}" routes by "${tableName}", which is not in the config`,
      );
    }
    const vh = selectVirtualHost(table, ctx.authority);
    if (!vh) {
      const service = splitAuthority(ctx.authority).host;
      const why =
        ctx.authority === ''
          ? 'the request has no Host or :authority'
          : `no virtual host of route table "${tableName}" matches "${ctx.authority}"`;
      return proxyError(404, 'WEFT_E_PROXY_UNKNOWN_SERVICE', `no service "${service}" in the mesh (${why})`);
    }
    ctx.virtualHost = vh;
    const route = selectRoute(vh, ctx);
    if (!route) {
      return proxyError(
        404,
        'WEFT_E_PROXY_NO_ROUTE',
        `no route for ${ctx.method} ${ctx.path} in virtual host "${vh.name}" of route table "${tableName}"`,
      );
    }
    ctx.route = route;
    const action = route.action;
    if (action.kind === 'redirect') {
      const location = redirectLocation(action, ctx, route.match);
      return { status: action.status, body: '', headers: { location: [location] } };
    }
    if (action.kind === 'direct') return { status: action.status, body: action.body ?? '' };
    ctx.forward = action;
    return undefined;
  },
};

/** The route's own header mutations and rewrites: after the proxy's headers, so a route can override them. */
export const routeMutationFilter: HttpFilter = {
  name: 'route-mutations',
  onRequest(ctx) {
    const route = ctx.route;
    if (!route) return undefined;
    applyHeaderMutations(ctx.headers, route.headers.requestAdd, route.headers.requestRemove);
    if (ctx.forward) {
      ctx.path = rewritePath(ctx.path, route.match, ctx.forward);
      if (ctx.forward.hostRewrite !== undefined) ctx.authority = ctx.forward.hostRewrite;
    }
    return undefined;
  },
  onResponse(ctx, res) {
    const route = ctx.route;
    if (route) applyHeaderMutations(res.headers, route.headers.responseAdd, route.headers.responseRemove);
  },
};

/** Weighted cluster, then an endpoint by the cluster's load balancer. */
export const clusterFilter: HttpFilter = {
  name: 'cluster',
  onRequest(ctx) {
    const forward = ctx.forward;
    if (!forward) return undefined;
    const name = pickWeightedCluster(forward);
    const cluster = name === undefined ? undefined : ctx.snapshot.clusters.get(name);
    const service = ctx.virtualHost?.name ?? ctx.authority;
    if (!cluster) {
      return proxyError(
        503,
        'WEFT_E_PROXY_UNKNOWN_CLUSTER',
        `no healthy upstream: route "${ctx.route?.name}" of service "${service}" names cluster "${name}", which is not in the config`,
      );
    }
    const protocol = cluster.cluster.protocol;
    if (protocol === 'tcp' || (ctx.grpc && protocol !== 'http2') || (ctx.upgrade && protocol !== 'http1')) {
      const need = ctx.grpc
        ? 'gRPC needs HTTP/2 end to end'
        : ctx.upgrade
          ? 'an Upgrade needs HTTP/1.1'
          : 'HTTP needs an HTTP cluster';
      return proxyError(
        502,
        'WEFT_E_PROXY_PROTOCOL_MISMATCH',
        `${need}, but cluster "${cluster.cluster.name}" speaks ${protocol}`,
      );
    }
    const endpoint = cluster.lb.pick();
    if (!endpoint) {
      const total = cluster.endpoints.length;
      return proxyError(
        503,
        'WEFT_E_PROXY_NO_HEALTHY_ENDPOINT',
        `no healthy upstream: cluster "${cluster.cluster.name}" of service "${service}" has no healthy endpoint (${total} endpoint${total === 1 ? '' : 's'}, 0 healthy)`,
      );
    }
    ctx.target = { cluster, endpoint };
    return undefined;
  },
};

export function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(\+|;|$)/i.test(contentType);
}
