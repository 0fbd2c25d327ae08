// How the compiler names the Envoy resources it emits. One place, because the names are an API:
// proxies subscribe to them, the CLI and /config_dump show them, and golden files pin them.

import type { MeshService, ServicePort } from '../registry/model.js';

/**
 * Istio-style outbound cluster name, recognisable to anyone who has read an Envoy config dump:
 * `outbound|<port>||<service>.<namespace>`, where `<port>` is the port's key (`portKey`).
 */
export function clusterName(namespace: string, service: string, port: number | string): string {
  return `outbound|${port}||${service}.${namespace}`;
}

/**
 * What identifies a service port in cluster names. A declared Service's port is its number. An
 * implicit service's named port is its name: its instances may listen on different numbers
 * (several on one host), the service shows the lowest, and that changes when the instance with
 * the lowest number leaves; a cluster renamed then would be a cluster removed under live routes,
 * failing requests until every proxy has the new routes. The name stays while any instance does.
 */
export function portKey(svc: MeshService, port: ServicePort): string {
  return svc.implicit && port.name !== undefined ? port.name : String(port.port);
}

/** The cluster of a service port given by number; the number itself when the service lacks it. */
export function clusterFor(
  svc: MeshService | undefined,
  namespace: string,
  name: string,
  port: number,
): string {
  const sp = svc?.ports.find((p) => p.port === port);
  return clusterName(namespace, name, svc && sp ? portKey(svc, sp) : port);
}

export function routeConfigName(namespace: string, service: string, port: number): string {
  return `${service}.${namespace}:${port}`;
}

/** Cluster for routes whose every backend has weight 0: no endpoints, so calls fail closed. */
export const BLACKHOLE_CLUSTER = 'weft-blackhole';

/**
 * The names a client may dial a service by (`xds:///<name>`): `svc.ns` and `svc.ns.svc`
 * everywhere, plain `svc` inside its own namespace; each with `:port`, and without a port for
 * the service's first port.
 */
export function listenerNames(
  svc: MeshService,
  nodeNamespace: string,
): Array<{ name: string; port: number }> {
  const hosts = [`${svc.name}.${svc.namespace}`, `${svc.name}.${svc.namespace}.svc`];
  if (svc.namespace === nodeNamespace) hosts.unshift(svc.name);
  const out: Array<{ name: string; port: number }> = [];
  const first = svc.ports[0];
  for (const host of hosts) {
    if (first) out.push({ name: host, port: first.port });
    for (const p of svc.ports) out.push({ name: `${host}:${p.port}`, port: p.port });
  }
  return out;
}
