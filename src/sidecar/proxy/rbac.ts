// Authorization decisions, pure and synchronous: Envoy's RBAC filter semantics over the
// RuntimeConfig's RbacRules. Each filter in order: a DENY filter denies when one of its
// policies matches; an ALLOW filter denies when none does. The first denial ends the walk, so
// with DENY filters ahead of ALLOW ones (as the compiler orders them) DENY wins.
// The same evaluation serves HTTP requests and TCP connections; for a connection there is no
// request, so header and path permissions never match it (Envoy's network RBAC does the same).

import type { RbacPermission, RbacPolicy, RbacPrincipal, RbacRules } from '../runtime-config.js';
import type { PeerIdentity } from './peer-identity.js';
import { matchHeader, matchString, type MatchInput } from './router.js';

export interface RbacInput {
  /** The verified client identity (mutual TLS); undefined for a plaintext client. */
  peer: PeerIdentity | undefined;
  /** The listener port the connection arrived on. */
  destinationPort: number;
  /** The request head; undefined for a TCP connection. */
  request?: MatchInput;
}

export type RbacDecision =
  | { allowed: true }
  | {
      allowed: false;
      /** The DENY policy that matched, or undefined when no ALLOW policy did. */
      policy: string | undefined;
      /** The filter that denied (its stat prefix names what it protects). */
      rules: RbacRules;
    };

/** Every policy that matched on the way, by action: what the stats count. */
export interface RbacTrace {
  matched: Array<{ policy: string; action: RbacRules['action'] }>;
}

const ALLOWED: RbacDecision = { allowed: true };

export function evaluateRbac(
  filters: readonly RbacRules[],
  input: RbacInput,
  trace?: RbacTrace,
): RbacDecision {
  for (const rules of filters) {
    const policy = rules.policies.find((p) => policyMatches(p, input));
    if (policy && trace) trace.matched.push({ policy: policy.name, action: rules.action });
    if (rules.action === 'DENY' && policy) return { allowed: false, policy: policy.name, rules };
    if (rules.action === 'ALLOW' && !policy) return { allowed: false, policy: undefined, rules };
  }
  return ALLOWED;
}

/** The sentence a denied client reads (HTTP 403 body, TCP log line). */
export function denialMessage(d: Extract<RbacDecision, { allowed: false }>): string {
  if (d.policy !== undefined) return `RBAC: access denied by ${d.policy}`;
  const names = d.rules.policies.map((p) => p.name).join(', ');
  const what = d.rules.statPrefix === '' ? '' : ` for ${d.rules.statPrefix}`;
  return `RBAC: access denied: no ALLOW policy matched${what} (ALLOW policies: ${names || 'none'})`;
}

function policyMatches(p: RbacPolicy, input: RbacInput): boolean {
  return (
    p.permissions.some((perm) => permissionMatches(perm, input)) &&
    p.principals.some((pr) => principalMatches(pr, input))
  );
}

function permissionMatches(p: RbacPermission, input: RbacInput): boolean {
  if ('any' in p) return true;
  if ('and' in p) return p.and.every((x) => permissionMatches(x, input));
  if ('or' in p) return p.or.some((x) => permissionMatches(x, input));
  if ('not' in p) return !permissionMatches(p.not, input);
  if ('destinationPort' in p) return p.destinationPort === input.destinationPort;
  const req = input.request;
  if (!req) return false;
  if ('header' in p) return matchHeader(p.header, req);
  const q = req.path.indexOf('?');
  return matchString(p.urlPath, q < 0 ? req.path : req.path.slice(0, q));
}

function principalMatches(p: RbacPrincipal, input: RbacInput): boolean {
  if ('any' in p) return true;
  if ('and' in p) return p.and.every((x) => principalMatches(x, input));
  if ('or' in p) return p.or.some((x) => principalMatches(x, input));
  if ('not' in p) return !principalMatches(p.not, input);
  if (input.peer === undefined) return false;
  return p.principalName === undefined || matchString(p.principalName, input.peer.spiffeId);
}

/** What `/stats` shows: totals (Envoy's `rbac.allowed`/`rbac.denied`) and counts per policy. */
export interface RbacStatsView {
  allowed: number;
  denied: number;
  /** Sorted by name. A default denial is counted under `no ALLOW policy matched for <what>`. */
  policies: Array<{ policy: string; action: RbacRules['action']; allowed: number; denied: number }>;
}

/** Decision counters for the life of the proxy (config swaps keep them). */
export class RbacStats {
  private allowed = 0;
  private denied = 0;
  private readonly perPolicy = new Map<string, RbacStatsView['policies'][number]>();

  /** Counts one decision: every policy that matched on the way, and the outcome. */
  record(decision: RbacDecision, trace: RbacTrace): void {
    if (decision.allowed) this.allowed++;
    else this.denied++;
    for (const m of trace.matched) {
      // A matched DENY policy denied; a matched ALLOW policy allowed unless a later filter denied.
      const denied = m.action === 'DENY' || !decision.allowed;
      this.bump(m.policy, m.action, denied);
    }
    if (!decision.allowed && decision.policy === undefined) {
      const what = decision.rules.statPrefix === '' ? '' : ` for ${decision.rules.statPrefix}`;
      this.bump(`no ALLOW policy matched${what}`, 'ALLOW', true);
    }
  }

  view(): RbacStatsView {
    return {
      allowed: this.allowed,
      denied: this.denied,
      policies: [...this.perPolicy.values()]
        .map((p) => ({ ...p }))
        .sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : 0)),
    };
  }

  private bump(policy: string, action: RbacRules['action'], denied: boolean): void {
    let entry = this.perPolicy.get(policy);
    if (!entry) {
      entry = { policy, action, allowed: 0, denied: 0 };
      this.perPolicy.set(policy, entry);
    }
    if (denied) entry.denied++;
    else entry.allowed++;
  }
}

/** Evaluates and counts: what the HTTP filter and the TCP listener call. */
export function authorize(
  filters: readonly RbacRules[] | undefined,
  input: RbacInput,
  stats: RbacStats | undefined,
): RbacDecision {
  if (filters === undefined || filters.length === 0) return ALLOWED;
  const trace: RbacTrace = { matched: [] };
  const decision = evaluateRbac(filters, input, trace);
  stats?.record(decision, trace);
  return decision;
}
