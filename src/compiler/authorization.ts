// Authorization policies → Envoy RBAC filters for a sidecar's inbound listener. Two filters, as
// Istio emits them: DENY first, then ALLOW, so a request a DENY policy matches is refused
// whatever ALLOW says, and once any ALLOW policy targets one of the workload's Services a
// request no ALLOW rule matches is refused. Each rule becomes one Envoy policy (a policy is
// "one permission and one principal", which cannot say "rule 1 or rule 2" across both), named
// `<Kind>/<namespace>/<name>` — with `:rules[<i>]` appended when the resource has several
// rules — so the proxy can say which one decided.
//
// For a TCP listener there is no request to look at: an ALLOW rule that names methods, paths or
// headers can never match a connection and is left out (fail closed); a DENY rule's request
// conditions are dropped, so it denies the callers it names outright (Istio does the same).

import type { AuthorizationBinding, AuthzOperation, AuthzRule, AuthzSource } from '../registry/model.js';

export const HTTP_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

type Obj = Record<string, unknown>;

/**
 * The policies guarding a workload — those targeting its Services, and (SMI) its service
 * account — as HTTP or network RBAC filters (none when no policy applies).
 */
export function rbacFilters(
  bindings: readonly AuthorizationBinding[],
  targets: ReadonlyArray<{ namespace: string; name: string }>,
  serviceAccount: { namespace: string; name: string } | undefined,
  kind: 'http' | 'tcp',
): object[] {
  const wanted = new Set(targets.map((t) => `${t.namespace}/${t.name}`));
  const sa = serviceAccount && `${serviceAccount.namespace}/${serviceAccount.name}`;
  const applies = (b: AuthorizationBinding): boolean => {
    const key = `${b.target.namespace}/${b.target.name}`;
    return b.target.kind === 'ServiceAccount' ? key === sa : wanted.has(key);
  };
  const mine = bindings.filter(applies);
  if (mine.length === 0) return [];
  const prefixes = [...wanted].sort().map((k) => `Service/${k}`);
  if (sa !== undefined && mine.some((b) => b.target.kind === 'ServiceAccount'))
    prefixes.push(`ServiceAccount/${sa}`);
  const statPrefix = prefixes.join(',');
  const out: object[] = [];
  for (const action of ['DENY', 'ALLOW'] as const) {
    const ofAction = mine.filter((b) => b.action === action);
    // An ALLOW filter with no policies still matters: it denies everything.
    if (ofAction.length === 0 || (action === 'DENY' && ofAction.every((b) => b.rules.length === 0))) continue;
    const policies: Record<string, Obj> = {};
    for (const b of ofAction) {
      const base = `${b.source.kind}/${b.source.namespace}/${b.source.name}`;
      b.rules.forEach((rule, i) => {
        const p = policy(rule, action, kind);
        if (p) policies[b.rules.length === 1 ? base : `${base}:rules[${i}]`] = p;
      });
    }
    const rules = { action, policies };
    out.push(
      kind === 'http'
        ? {
            name: 'envoy.filters.http.rbac',
            typed_config: { '@type': HTTP_RBAC_TYPE, rules, rules_stat_prefix: statPrefix },
          }
        : {
            name: 'envoy.filters.network.rbac',
            typed_config: { '@type': NETWORK_RBAC_TYPE, rules, stat_prefix: statPrefix },
          },
    );
  }
  return out;
}

function policy(rule: AuthzRule, action: 'ALLOW' | 'DENY', kind: 'http' | 'tcp'): Obj | undefined {
  let to = rule.to;
  if (kind === 'tcp' && to !== undefined) {
    // Every `to` field is about the request (methods, paths, headers).
    if (action === 'ALLOW') return undefined;
    to = undefined;
  }
  return {
    permissions: to === undefined ? [{ any: true }] : to.map(operation),
    principals: rule.from === undefined ? [{ any: true }] : rule.from.map(source),
  };
}

function all<T extends Obj>(items: T[], key: 'and_rules' | 'and_ids', inner: 'rules' | 'ids'): Obj {
  return items.length === 1 ? items[0]! : { [key]: { [inner]: items } };
}

function any<T extends Obj>(items: T[], key: 'or_rules' | 'or_ids', inner: 'rules' | 'ids'): Obj {
  return items.length === 1 ? items[0]! : { [key]: { [inner]: items } };
}

function principalMatcher(p: string): Obj {
  if (p === '*') return { authenticated: {} };
  if (p.endsWith('*')) return { authenticated: { principal_name: { prefix: p.slice(0, -1) } } };
  return { authenticated: { principal_name: { exact: p } } };
}

function source(s: AuthzSource): Obj {
  const parts: Obj[] = [];
  if (s.principals) parts.push(any(s.principals.map(principalMatcher), 'or_ids', 'ids'));
  if (s.notPrincipals) parts.push({ not_id: any(s.notPrincipals.map(principalMatcher), 'or_ids', 'ids') });
  if (s.namespaces) {
    // Any trust domain: the compiler does not know the mesh's, and a namespace is a path segment.
    const ns = s.namespaces.map((n) => ({
      authenticated: { principal_name: { safe_regex: { regex: `spiffe://[^/]+/ns/${n}/sa/[^/]+` } } },
    }));
    parts.push(any(ns, 'or_ids', 'ids'));
  }
  if (s.serviceAccounts) {
    const sas = s.serviceAccounts.map((a) => ({
      authenticated: {
        principal_name: {
          safe_regex: { regex: `spiffe://[^/]+/ns/${a.namespace}/sa/${a.name.replace(/\./g, '\\.')}` },
        },
      },
    }));
    parts.push(any(sas, 'or_ids', 'ids'));
  }
  return all(parts, 'and_ids', 'ids');
}

function pathMatcher(p: string): Obj {
  if (p === '*') return { any: true };
  if (p.endsWith('*')) return { url_path: { path: { prefix: p.slice(0, -1) } } };
  return { url_path: { path: { exact: p } } };
}

function operation(o: AuthzOperation): Obj {
  const parts: Obj[] = [];
  if (o.methods) {
    const methods = o.methods.map((m) => ({ header: { name: ':method', string_match: { exact: m } } }));
    parts.push(any(methods, 'or_rules', 'rules'));
  }
  if (o.paths) parts.push(any(o.paths.map(pathMatcher), 'or_rules', 'rules'));
  if (o.pathRegex !== undefined) parts.push({ url_path: { path: { safe_regex: { regex: o.pathRegex } } } });
  if (o.notPaths) parts.push({ not_rule: any(o.notPaths.map(pathMatcher), 'or_rules', 'rules') });
  for (const h of o.headers ?? []) {
    const name = h.name.toLowerCase();
    if (h.value !== undefined) parts.push({ header: { name, string_match: { exact: h.value } } });
    else if (h.prefix !== undefined) parts.push({ header: { name, string_match: { prefix: h.prefix } } });
    else parts.push({ header: { name, present_match: true } });
  }
  return all(parts, 'and_rules', 'rules');
}
