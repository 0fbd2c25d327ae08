// The xDS translator: the Envoy resources the sidecar holds (all four types, decoded as
// `decodeResource` returns them) → one RuntimeConfig, or every problem that makes the set
// unacceptable. Pure: the agent calls it with the state an update would produce and NACKs the
// update if it returns problems, so a config is either taken whole or not at all.
//
// Each resource is first checked against the declared subset (subset.ts and the SPEC of each
// resource module) and only then translated, so translators read well-shaped objects. What is
// merely not there yet is not a problem: a listener whose RDS route config has not arrived is
// warming, an EDS cluster whose assignment has not arrived has no endpoints, and a cluster a
// route names that CDS does not have makes that route answer 503 at request time, as in Envoy.
import type {
  ConfigVersions,
  RouteTable,
  RuntimeCluster,
  RuntimeConfig,
  RuntimeListener,
} from '../runtime-config.js';
import { CLUSTER, translateCluster, type TranslatedCluster } from './cluster.js';
import { CLUSTER_LOAD_ASSIGNMENT, translateLoadAssignment } from './cluster-load-assignment.js';
import { LISTENER, translateListener } from './listener.js';
import { ProblemSink, type ConfigProblem, type ResourceKind } from './problems.js';
import { ROUTE_CONFIGURATION, translateRouteConfiguration } from './route-configuration.js';
import { checkMessage, isObject, type MessageSpec } from './subset.js';

export { formatProblem, nackMessage, type ConfigProblem, type ResourceKind } from './problems.js';

/** Resources by name, per type, as the ADS client holds them. */
export interface XdsResources {
  listeners: ReadonlyMap<string, unknown>;
  routes: ReadonlyMap<string, unknown>;
  clusters: ReadonlyMap<string, unknown>;
  endpoints: ReadonlyMap<string, unknown>;
}

export interface TranslateInput extends XdsResources {
  versions: ConfigVersions;
  /**
   * The config in force. A listener that changed to a route config not received yet keeps its
   * previous form meanwhile, as Envoy keeps serving the old listener until the new one warms.
   */
  previous?: RuntimeConfig;
}

/** What the config still waits for; empty lists mean it is complete. */
export interface Pending {
  /** Listeners not served yet because their route config has not arrived. */
  listeners: string[];
  /** RDS names referenced by listeners and not received. */
  routeConfigs: string[];
  /** EDS names (ClusterLoadAssignments) referenced by clusters and not received. */
  endpoints: string[];
}

export type TranslateResult =
  { ok: true; config: RuntimeConfig; pending: Pending } | { ok: false; problems: ConfigProblem[] };

type Obj = Record<string, unknown>;

/** Runs the subset check, then `fn` on a clean resource; problems go to `problems`. */
function each<T>(
  kind: ResourceKind,
  spec: MessageSpec,
  resources: ReadonlyMap<string, unknown>,
  problems: ConfigProblem[],
  fn: (obj: Obj, sink: ProblemSink, name: string) => T,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, obj] of resources) {
    const sink = new ProblemSink(kind, name, problems);
    if (!checkMessage(spec, obj, '', sink)) continue;
    out.set(name, fn(obj as Obj, sink, name));
  }
  return out;
}

export function translate(input: TranslateInput): TranslateResult {
  const problems: ConfigProblem[] = [];

  const listeners = each('Listener', LISTENER, input.listeners, problems, (l, sink) =>
    translateListener(l, sink),
  );
  const routes = new Map<string, RouteTable>(
    each('RouteConfiguration', ROUTE_CONFIGURATION, input.routes, problems, (rc, sink, name) =>
      translateRouteConfiguration(rc, name, '', sink),
    ),
  );
  const rdsNames = new Set(routes.keys());
  const clusters = each('Cluster', CLUSTER, input.clusters, problems, (c, sink) => {
    const t = translateCluster(c, sink);
    const endpoints = t.staticAssignment
      ? translateLoadAssignment(t.staticAssignment, 'load_assignment', sink)
      : [];
    return { ...t, endpoints };
  });
  const assignments = each(
    'ClusterLoadAssignment',
    CLUSTER_LOAD_ASSIGNMENT,
    input.endpoints,
    problems,
    (cla, sink) => translateLoadAssignment(cla, '', sink),
  );

  // Listeners: addresses are exclusive; inline route tables join the RDS ones by name.
  const byAddress = new Map<string, string>();
  const served: RuntimeListener[] = [];
  const pending: Pending = { listeners: [], routeConfigs: [], endpoints: [] };
  for (const [name, t] of [...listeners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (t === undefined) continue;
    const sink = new ProblemSink('Listener', name, problems);
    const l = t.listener;
    if (l.port !== 0) {
      const key = `${l.host}:${l.port}`;
      const other = byAddress.get(key);
      if (other !== undefined)
        sink.add('address', `${key} is also the address of listener ${JSON.stringify(other)}`);
      byAddress.set(key, name);
    }
    if (t.inline !== undefined) {
      if (routes.has(t.inline.name)) {
        const clash = rdsNames.has(t.inline.name)
          ? 'a RouteConfiguration from RDS'
          : 'another inline route config';
        sink.add(
          'filter_chains[0].filters[0].typed_config.route_config.name',
          `${JSON.stringify(t.inline.name)} is also the name of ${clash}; give the inline route config its own name`,
        );
      }
      routes.set(t.inline.name, t.inline);
    }
    if (l.kind === 'http' && !routes.has(l.routeConfig)) {
      pending.routeConfigs.push(l.routeConfig);
      pending.listeners.push(name);
      const before = input.previous?.listeners.find((p) => p.name === name);
      const table = before?.kind === 'http' ? input.previous?.routes.get(before.routeConfig) : undefined;
      if (before !== undefined && table !== undefined) {
        served.push(before);
        if (!routes.has(table.name)) routes.set(table.name, table);
      }
      continue;
    }
    served.push(l);
  }
  if (problems.length > 0) return { ok: false, problems };

  const protocols = referencedProtocols(served, routes);
  const runtimeClusters = new Map<string, RuntimeCluster>();
  for (const [name, c] of [...clusters].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let endpoints = c.endpoints;
    if (c.edsName !== undefined) {
      const fromEds = assignments.get(c.edsName);
      if (fromEds === undefined) pending.endpoints.push(c.edsName);
      endpoints = fromEds ?? [];
    }
    // Without the cluster's mTLS settings no endpoint can be reached over mTLS.
    if (c.cluster.tls === undefined && endpoints.some((e) => e.tls)) {
      endpoints = endpoints.map((e) => ({ ...e, tls: false }));
    }
    runtimeClusters.set(name, { ...c.cluster, protocol: clusterProtocol(c, protocols.get(name)), endpoints });
  }
  pending.routeConfigs = [...new Set(pending.routeConfigs)].sort();
  pending.endpoints = [...new Set(pending.endpoints)].sort();
  return {
    ok: true,
    config: { versions: { ...input.versions }, listeners: served, routes, clusters: runtimeClusters },
    pending,
  };
}

/**
 * How to talk to a cluster's endpoints. Envoy learns HTTP/2 from the cluster's protocol
 * options; HTTP/1.1 is its default. A cluster only TCP proxies use carries opaque bytes.
 */
function clusterProtocol(
  c: TranslatedCluster,
  refs: { tcp: boolean; http: boolean } | undefined,
): RuntimeCluster['protocol'] {
  if (c.httpProtocol !== undefined) return c.httpProtocol;
  return refs?.tcp === true && !refs.http ? 'tcp' : 'http1';
}

function referencedProtocols(
  listeners: RuntimeListener[],
  routes: ReadonlyMap<string, RouteTable>,
): Map<string, { tcp: boolean; http: boolean }> {
  const out = new Map<string, { tcp: boolean; http: boolean }>();
  const mark = (name: string, how: 'tcp' | 'http'): void => {
    const r = out.get(name) ?? { tcp: false, http: false };
    r[how] = true;
    out.set(name, r);
  };
  for (const l of listeners) if (l.kind === 'tcp') mark(l.cluster, 'tcp');
  for (const table of routes.values()) {
    for (const vh of table.virtualHosts) {
      for (const r of vh.routes) {
        if (r.action.kind !== 'forward') continue;
        for (const c of r.action.clusters) mark(c.name, 'http');
        for (const m of r.action.mirrors) mark(m.cluster, 'http');
      }
    }
  }
  return out;
}

/**
 * The RDS and EDS names a set of listeners and clusters refers to: what the agent subscribes to.
 * Reads unchecked objects defensively, since it runs before (and regardless of) translation.
 */
export function referencedNames(
  listeners: ReadonlyMap<string, unknown>,
  clusters: ReadonlyMap<string, unknown>,
): { routes: string[]; endpoints: string[] } {
  const routes = new Set<string>();
  for (const l of listeners.values()) {
    const chains = isObject(l) && Array.isArray(l.filter_chains) ? (l.filter_chains as unknown[]) : [];
    for (const chain of chains) {
      const filters = isObject(chain) && Array.isArray(chain.filters) ? (chain.filters as unknown[]) : [];
      for (const f of filters) {
        const rds = isObject(f) && isObject(f.typed_config) ? f.typed_config.rds : undefined;
        if (isObject(rds) && typeof rds.route_config_name === 'string' && rds.route_config_name !== '') {
          routes.add(rds.route_config_name);
        }
      }
    }
  }
  const endpoints = new Set<string>();
  for (const [name, c] of clusters) {
    if (!isObject(c) || c.type !== 'EDS') continue;
    const service = isObject(c.eds_cluster_config) ? c.eds_cluster_config.service_name : undefined;
    endpoints.add(typeof service === 'string' && service !== '' ? service : name);
  }
  return { routes: [...routes].sort(), endpoints: [...endpoints].sort() };
}
