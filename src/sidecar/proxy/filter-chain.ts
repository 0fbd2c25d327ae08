// The HTTP request pipeline, assembled here and only here. Every request — forwarded,
// tunnelled (Upgrade) or answered locally — runs these filters in this order on its head; the
// response head runs them in reverse. After the chain, the forwarder (or the Upgrade tunnel)
// carries the bodies.
//
// Why this order:
//  1. hop-by-hop   — first, so nothing later (route matching on headers included) sees fields
//                    the client addressed to this connection only, and a `Connection: x-foo`
//                    cannot smuggle `x-foo` past a route's header match into the upstream.
//  2. request-id   — before any decision, so every outcome, local replies included, carries it.
//  2b. path        — the listener's path normalization (Envoy does it in the connection manager,
//                    before any HTTP filter): every later decision — RBAC, routing, rewrites —
//                    and the upstream request must see one spelling of the path, or a DENY on
//                    `/admin` is walked around with `/./admin`. After request-id, so its 400s
//                    carry one.
//  3. rbac         — authorization on what the client sent (after hop-by-hop, so a header the
//                    client nominated for removal cannot satisfy a header rule), before the
//                    proxy adds its own headers and before any route is looked at: a denied
//                    request learns nothing about routes and costs no routing work (Envoy puts
//                    its RBAC filter ahead of the router too). Identities come from the TLS
//                    layer (ctx.peer), never from headers.
//  4. x-forwarded  — the proxy's own facts about the client, recorded before the route runs so
//                    that a route's header mutations (step 6) can still override them.
//  4b. client-cert — with x-forwarded: drops any x-forwarded-client-cert and x-weft-* a sender
//                    wrote, then adds the verified peer's XFCC, before routing can read them.
//  5. router       — virtual host and route; 404s, redirects and direct responses stop here,
//                    before any cluster is looked at.
//  6. route-mutations — the matched route's header edits and path/host rewrites; they need the
//                    route and must precede forwarding.
//  7. cluster      — weighted cluster and endpoint last: the load balancer counts a pick as load,
//                    so it picks only for requests that will really be sent.

import {
  clientCertFilter,
  clusterFilter,
  forwardedFilter,
  hopByHopFilter,
  pathFilter,
  rbacFilter,
  requestIdFilter,
  routeMutationFilter,
  routerFilter,
  type HttpFilter,
} from './http-filters.js';
import type { LocalReply } from './local-reply.js';
import type { RequestContext, ResponseHead } from './request-context.js';

export const HTTP_FILTER_CHAIN: readonly HttpFilter[] = Object.freeze([
  hopByHopFilter,
  requestIdFilter,
  pathFilter,
  rbacFilter,
  forwardedFilter,
  clientCertFilter,
  routerFilter,
  routeMutationFilter,
  clusterFilter,
]);

/** Runs the request side; a LocalReply means the chain stopped and the client gets it. */
export function runRequestFilters(ctx: RequestContext, chain = HTTP_FILTER_CHAIN): LocalReply | undefined {
  for (const f of chain) {
    const reply = f.onRequest(ctx);
    if (reply) return reply;
  }
  return undefined;
}

export function runResponseFilters(ctx: RequestContext, res: ResponseHead, chain = HTTP_FILTER_CHAIN): void {
  for (let i = chain.length - 1; i >= 0; i--) chain[i]!.onResponse?.(ctx, res);
}
