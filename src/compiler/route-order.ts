// Gateway API route precedence. Within one parent, every (rule, match) pair becomes one Envoy
// route, and Envoy takes the first that matches, so the pairs are sorted by the spec's order:
// exact path before prefix, longer paths first, then more header matches, then more query
// matches; ties go to the older route, then to namespace/name, then to rule and match order.
// Regular-expression paths have implementation-defined precedence: we put them after literal
// paths of any length, as Istio does.
//
// GRPCRoute has its own order: more characters of matched service first, then of method, then
// more header matches (a rule without matches has none of either, so it comes last). When both
// kinds attach to one service, the kind whose oldest route is older goes first as a block.

import type { RouteBinding, RouteMatch, RouteRule } from '../registry/model.js';

export interface OrderedMatch {
  binding: RouteBinding;
  rule: RouteRule;
  ruleIndex: number;
  match: RouteMatch;
  matchIndex: number;
}

function pathRank(m: RouteMatch): number {
  switch (m.path?.type) {
    case 'Exact':
      return 0;
    case 'PathPrefix':
      return 1;
    case 'RegularExpression':
      return 2;
    default:
      return 1;
  }
}

function compareGrpc(a: OrderedMatch, b: OrderedMatch): number {
  const ga = a.match.grpc ?? { service: '', method: '' };
  const gb = b.match.grpc ?? { service: '', method: '' };
  return (
    gb.service.length - ga.service.length ||
    gb.method.length - ga.method.length ||
    b.match.headers.length - a.match.headers.length
  );
}

function compareHttp(a: OrderedMatch, b: OrderedMatch): number {
  return (
    pathRank(a.match) - pathRank(b.match) ||
    (b.match.path?.value.length ?? 1) - (a.match.path?.value.length ?? 1) ||
    Number(b.match.method !== undefined) - Number(a.match.method !== undefined) ||
    b.match.headers.length - a.match.headers.length ||
    b.match.queryParams.length - a.match.queryParams.length
  );
}

function isGrpc(m: OrderedMatch): boolean {
  return m.binding.source.kind === 'GRPCRoute';
}

function compareMatches(
  a: OrderedMatch,
  b: OrderedMatch,
  sourceOrder: Map<RouteBinding, number>,
  kindOrder: Map<boolean, number>,
): number {
  return (
    (kindOrder.get(isGrpc(a)) ?? 0) - (kindOrder.get(isGrpc(b)) ?? 0) ||
    (isGrpc(a) ? compareGrpc(a, b) : compareHttp(a, b)) ||
    (sourceOrder.get(a.binding) ?? 0) - (sourceOrder.get(b.binding) ?? 0) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex
  );
}

/** `bindings` must already be in tie-break order (oldest first, then namespace/name). */
export function orderMatches(bindings: RouteBinding[]): OrderedMatch[] {
  const sourceOrder = new Map(bindings.map((b, i) => [b, i]));
  const kindOrder = new Map<boolean, number>();
  for (const b of bindings) {
    const grpc = b.source.kind === 'GRPCRoute';
    if (!kindOrder.has(grpc)) kindOrder.set(grpc, kindOrder.size);
  }
  const all: OrderedMatch[] = [];
  for (const binding of bindings) {
    binding.rules.forEach((rule, ruleIndex) => {
      const matches = rule.matches.length > 0 ? rule.matches : [{ headers: [], queryParams: [] }];
      matches.forEach((match, matchIndex) => all.push({ binding, rule, ruleIndex, match, matchIndex }));
    });
  }
  return all.sort((a, b) => compareMatches(a, b, sourceOrder, kindOrder));
}
