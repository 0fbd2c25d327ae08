// The RBAC filters, HTTP (`envoy.filters.http.rbac`, ahead of the router) and network
// (`envoy.filters.network.rbac`, ahead of tcp_proxy): the subset of envoy.config.rbac.v3 the
// sidecar enforces and its translation to RbacRules. Permissions and principals are recursive
// (and/or/not), so their specs refer to themselves.
import type { RbacPermission, RbacPrincipal, RbacRules } from '../runtime-config.js';
import { STRING_MATCHER, stringMatcher } from './common.js';
import { at, type ProblemSink } from './problems.js';
import { HEADER_MATCHER, headerMatch } from './route-configuration.js';
import {
  bool,
  enumOf,
  isObject,
  list,
  mapOfAny,
  message,
  str,
  uint,
  type FieldSpec,
  type MessageSpec,
} from './subset.js';

export const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';

const permissionFields: Record<string, FieldSpec> = {};
const PERMISSION: MessageSpec = {
  fields: permissionFields,
  oneOf: [
    {
      fields: ['and_rules', 'or_rules', 'any', 'header', 'url_path', 'destination_port', 'not_rule'],
      required: true,
    },
  ],
};
const PERMISSION_SET: MessageSpec = { fields: { rules: list(message(PERMISSION)) } };
Object.assign(permissionFields, {
  and_rules: message(PERMISSION_SET),
  or_rules: message(PERMISSION_SET),
  any: bool,
  header: message(HEADER_MATCHER),
  url_path: message({ fields: { path: message(STRING_MATCHER) }, required: ['path'] }),
  destination_port: uint,
  not_rule: message(PERMISSION),
});

const principalFields: Record<string, FieldSpec> = {};
const PRINCIPAL: MessageSpec = {
  fields: principalFields,
  oneOf: [{ fields: ['and_ids', 'or_ids', 'any', 'authenticated', 'not_id'], required: true }],
};
const PRINCIPAL_SET: MessageSpec = { fields: { ids: list(message(PRINCIPAL)) } };
Object.assign(principalFields, {
  and_ids: message(PRINCIPAL_SET),
  or_ids: message(PRINCIPAL_SET),
  any: bool,
  authenticated: message({ fields: { principal_name: message(STRING_MATCHER) } }),
  not_id: message(PRINCIPAL),
});

const POLICY: MessageSpec = {
  fields: { permissions: list(message(PERMISSION)), principals: list(message(PRINCIPAL)) },
  required: ['permissions', 'principals'],
};

/** envoy.config.rbac.v3.RBAC. LOG (shadow-only) is not enforced, so it is refused. */
const RBAC_RULES: MessageSpec = {
  fields: { action: enumOf('ALLOW', 'DENY'), policies: mapOfAny(message(POLICY)) },
};

export const HTTP_RBAC: MessageSpec = { fields: { rules: message(RBAC_RULES), rules_stat_prefix: str } };
export const NETWORK_RBAC: MessageSpec = {
  fields: { rules: message(RBAC_RULES), stat_prefix: str },
  required: ['stat_prefix'],
};

type Obj = Record<string, unknown>;

/**
 * A checked RBAC filter config as RbacRules, or undefined when it has no `rules` (Envoy then
 * lets everything through). `statPrefix` is the filter's own prefix field.
 */
export function translateRbac(
  config: Obj,
  statPrefix: string,
  path: string,
  sink: ProblemSink,
): RbacRules | undefined {
  if (!isObject(config.rules)) return undefined;
  const rules = config.rules;
  const rulesPath = at(path, 'rules');
  const policies = isObject(rules.policies) ? rules.policies : {};
  return {
    // ALLOW is the enum's zero value, which protobuf leaves out.
    action: rules.action === 'DENY' ? 'DENY' : 'ALLOW',
    statPrefix,
    policies: Object.keys(policies)
      .sort()
      .map((name) => {
        const p = policies[name] as Obj;
        const policyPath = at(at(rulesPath, 'policies'), name);
        const permissions = (p.permissions as Obj[] | undefined) ?? [];
        const principals = (p.principals as Obj[] | undefined) ?? [];
        // An empty list arrives as an absent field; Envoy requires at least one of each.
        if (permissions.length === 0)
          sink.add(at(policyPath, 'permissions'), 'must hold at least one permission');
        if (principals.length === 0)
          sink.add(at(policyPath, 'principals'), 'must hold at least one principal');
        return {
          name,
          permissions: permissions.map((x, i) => permission(x, at(at(policyPath, 'permissions'), i), sink)),
          principals: principals.map((x, i) => principal(x, at(at(policyPath, 'principals'), i), sink)),
        };
      }),
  };
}

function permission(p: Obj, path: string, sink: ProblemSink): RbacPermission {
  if (p.any === true) return { any: true };
  if (isObject(p.and_rules)) return { and: permissionList(p.and_rules, at(path, 'and_rules'), sink) };
  if (isObject(p.or_rules)) return { or: permissionList(p.or_rules, at(path, 'or_rules'), sink) };
  if (isObject(p.not_rule)) return { not: permission(p.not_rule, at(path, 'not_rule'), sink) };
  if (isObject(p.header)) return { header: headerMatch(p.header, at(path, 'header'), sink) };
  if (typeof p.destination_port === 'number') {
    if (p.destination_port > 65535)
      sink.add(at(path, 'destination_port'), `${p.destination_port} is not a port`);
    return { destinationPort: p.destination_port };
  }
  if (isObject(p.url_path)) {
    const m = stringMatcher(p.url_path.path as Obj, at(at(path, 'url_path'), 'path'), sink);
    if (m !== undefined) return { urlPath: m };
    // The regex problem is already reported; this placeholder never reaches the proxy.
    return { not: { any: true } };
  }
  // `any: false` is the proto3 default and arrives absent: the oneof check has reported it.
  sink.add(path, 'must set one rule');
  return { not: { any: true } };
}

function permissionList(set: Obj, path: string, sink: ProblemSink): RbacPermission[] {
  const rules = (set.rules as Obj[] | undefined) ?? [];
  return rules.map((r, i) => permission(r, at(at(path, 'rules'), i), sink));
}

function principal(p: Obj, path: string, sink: ProblemSink): RbacPrincipal {
  if (p.any === true) return { any: true };
  if (isObject(p.and_ids)) return { and: principalList(p.and_ids, at(path, 'and_ids'), sink) };
  if (isObject(p.or_ids)) return { or: principalList(p.or_ids, at(path, 'or_ids'), sink) };
  if (isObject(p.not_id)) return { not: principal(p.not_id, at(path, 'not_id'), sink) };
  if (isObject(p.authenticated)) {
    const name = p.authenticated.principal_name;
    if (!isObject(name)) return { authenticated: true };
    const m = stringMatcher(name, at(at(path, 'authenticated'), 'principal_name'), sink);
    return m === undefined ? { not: { any: true } } : { authenticated: true, principalName: m };
  }
  sink.add(path, 'must set one identifier');
  return { not: { any: true } };
}

function principalList(set: Obj, path: string, sink: ProblemSink): RbacPrincipal[] {
  const ids = (set.ids as Obj[] | undefined) ?? [];
  return ids.map((r, i) => principal(r, at(at(path, 'ids'), i), sink));
}
