// The mesh the xDS bench runs against, and what each simulated client subscribes to.
//
// S services `svc-0` … `svc-(S-1)`, each made implicitly by two Workloads labelled `app: svc-N`
// with one GRPC port; every tenth service has an HTTPRoute splitting its traffic between itself
// and the next service. Clients behave like proxyless gRPC channels: they subscribe by name to
// the Listener of each service they dial, its RouteConfiguration, and the Clusters and
// ClusterLoadAssignments that route points at. Every client dials svc-0 (whose route the bench
// changes) plus two others spread over the mesh, so the change reaches all of them while the
// server still has to tell the clients apart.

import { clusterName, routeConfigName } from '../../src/compiler/names.js';
import { TypeUrl } from '../../src/xds/types.js';

const NAMESPACE = 'default';
const PORT = 50051;
/** The port's name: an implicit service's cluster is keyed by it (outbound|grpc||svc-N.default). */
const PORT_NAME = 'grpc';
const ROUTED_EVERY = 10;

export function serviceName(n: number): string {
  return `svc-${n}`;
}

function workload(n: number, k: number): object {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: `svc-${n}-${k}`, labels: { app: serviceName(n) } },
    spec: {
      address: `10.${(n >> 8) & 255}.${n & 255}.${k + 1}`,
      ports: [{ name: PORT_NAME, port: PORT, protocol: 'GRPC' }],
    },
  };
}

/** The HTTPRoute of a routed service; `weight` goes to the service itself, the rest to the next. */
export function route(n: number, services: number, weight: number): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: `route-${serviceName(n)}` },
    spec: {
      parentRefs: [{ name: serviceName(n) }],
      rules: [
        {
          backendRefs: [
            { name: serviceName(n), weight },
            { name: serviceName((n + 1) % services), weight: 100 - weight },
          ],
        },
      ],
    },
  };
}

/** Every document of the mesh, in apply batches of about `batch` documents. */
export function meshBatches(services: number, batch: number): object[][] {
  const docs: object[] = [];
  for (let n = 0; n < services; n++) {
    docs.push(workload(n, 0), workload(n, 1));
    if (n % ROUTED_EVERY === 0) docs.push(route(n, services, 50));
  }
  const out: object[][] = [];
  for (let i = 0; i < docs.length; i += batch) out.push(docs.slice(i, i + batch));
  return out;
}

/** Services client `i` dials: svc-0 and two more chosen by multiplicative hashing. */
export function dialledServices(i: number, services: number): number[] {
  if (services < 2) return [0];
  const spread = services - 1;
  const set = new Set([0, 1 + ((i * 7919) % spread), 1 + ((i * 104_729 + 13) % spread)]);
  return [...set];
}

export type ClientSubscriptions = Record<TypeUrl, string[]>;

/** What a proxyless gRPC client dialling these services asks for, by type. */
export function subscriptionsFor(dialled: number[], services: number): Partial<ClientSubscriptions> {
  const listeners = dialled.map(serviceName);
  const routes = dialled.map((n) => routeConfigName(NAMESPACE, serviceName(n), PORT));
  const clusters = new Set<string>();
  for (const n of dialled) {
    clusters.add(clusterName(NAMESPACE, serviceName(n), PORT_NAME));
    if (n % ROUTED_EVERY === 0)
      clusters.add(clusterName(NAMESPACE, serviceName((n + 1) % services), PORT_NAME));
  }
  return {
    [TypeUrl.Listener]: listeners,
    [TypeUrl.RouteConfiguration]: routes,
    [TypeUrl.Cluster]: [...clusters],
    [TypeUrl.ClusterLoadAssignment]: [...clusters],
  };
}
