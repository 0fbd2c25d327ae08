// ClusterLoadAssignment → endpoints: IP:port, weight and health, flattened across localities.
// Locality weights are accepted but, as in Envoy without locality_weighted_lb_config (which the
// sidecar does not implement), they do not change how traffic is spread.
import type { Endpoint } from '../runtime-config.js';
import { ADDRESS, socketAddress, wrapped } from './common.js';
import { at, type ProblemSink } from './problems.js';
import { ENDPOINT_METADATA, TLS_MODE_WEFT, TRANSPORT_SOCKET_MATCH, tlsModeOf } from './transport-socket.js';
import { UINT32_VALUE, enumOf, list, message, str, uint, type MessageSpec } from './subset.js';

const LB_ENDPOINT: MessageSpec = {
  fields: {
    endpoint: message({ fields: { address: message(ADDRESS) }, required: ['address'] }),
    metadata: message(ENDPOINT_METADATA),
    health_status: enumOf('UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'),
    load_balancing_weight: message(UINT32_VALUE),
  },
  required: ['endpoint'],
};

const LOCALITY_LB_ENDPOINTS: MessageSpec = {
  fields: {
    locality: message({ fields: { region: str, zone: str, sub_zone: str } }),
    lb_endpoints: list(message(LB_ENDPOINT)),
    load_balancing_weight: message(UINT32_VALUE),
    priority: uint,
  },
};

export const CLUSTER_LOAD_ASSIGNMENT: MessageSpec = {
  fields: { cluster_name: str, endpoints: list(message(LOCALITY_LB_ENDPOINTS)) },
  required: ['cluster_name'],
};

/** Health statuses Envoy routes to; the rest (unhealthy, draining, timed out, degraded) it avoids. */
const USABLE = new Set(['UNKNOWN', 'HEALTHY']);

type Obj = Record<string, unknown>;
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

/** Endpoints of an assignment checked against CLUSTER_LOAD_ASSIGNMENT (under `path`). */
export function translateLoadAssignment(cla: Obj, path: string, sink: ProblemSink): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Map<string, Endpoint>();
  arr(cla.endpoints).forEach((loc, i) => {
    const lpath = at(at(path, 'endpoints'), i);
    // Priorities are failover tiers; the sidecar has only one.
    if (typeof loc.priority === 'number' && loc.priority !== 0) {
      sink.add(
        at(lpath, 'priority'),
        `${loc.priority} is not supported by the Weft sidecar (only priority 0)`,
      );
    }
    arr(loc.lb_endpoints).forEach((lb, j) => {
      const epath = at(at(lpath, 'lb_endpoints'), j);
      const address = (lb.endpoint as Obj).address as Obj;
      const addr = socketAddress(address, at(at(epath, 'endpoint'), 'address'), sink, { portZeroOk: false });
      const weight = wrapped<number>(lb.load_balancing_weight, 0) ?? 1;
      if (weight < 1) sink.add(at(epath, 'load_balancing_weight'), 'must be ≥ 1');
      if (addr === undefined) return;
      const key = `${addr.host}:${addr.port}`;
      const healthy = USABLE.has((lb.health_status as string | undefined) ?? 'UNKNOWN');
      // The same address twice (a restarted sidecar's new Workload beside the old one until its
      // lease expires) is one endpoint, as in Envoy: refusing the whole assignment would leave
      // the cluster without endpoints, and every sidecar stuck on it, until then.
      const earlier = seen.get(key);
      if (earlier) {
        earlier.weight = Math.max(earlier.weight, weight);
        earlier.healthy ||= healthy;
        return;
      }
      const tlsMode = tlsModeOf(
        ((lb.metadata as Obj | undefined)?.filter_metadata as Obj | undefined)?.[TRANSPORT_SOCKET_MATCH],
      );
      const endpoint: Endpoint = {
        ...addr,
        weight,
        healthy,
        ...(tlsMode === TLS_MODE_WEFT ? { tls: true } : {}),
      };
      seen.set(key, endpoint);
      out.push(endpoint);
    });
  });
  return out;
}
