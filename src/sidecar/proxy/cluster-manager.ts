// Turns the config's clusters into pickable clusters (a load balancer over endpoint state) and
// keeps each endpoint's load state across config swaps: an endpoint that stays in a cluster keeps
// its active count and latency, so a swap neither forgets load nor double-counts in-flight work.

import type { RuntimeCluster, RuntimeConfig } from '../runtime-config.js';
import { createLoadBalancer, EndpointStats, type LbEndpoint, type LoadBalancer } from './load-balancer.js';

export interface ActiveCluster {
  cluster: RuntimeCluster;
  endpoints: LbEndpoint[];
  lb: LoadBalancer;
}

export interface EndpointStatsView {
  host: string;
  port: number;
  weight: number;
  healthy: boolean;
  activeRequests: number;
  ewmaLatencyMs: number | null;
  totalRequests: number;
  failedRequests: number;
}

export interface ClusterStatsView {
  name: string;
  lbPolicy: RuntimeCluster['lbPolicy'];
  protocol: RuntimeCluster['protocol'];
  activeRequests: number;
  totalRequests: number;
  failedRequests: number;
  endpoints: EndpointStatsView[];
}

export function endpointKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class ClusterManager {
  /** cluster name → endpoint key → stats. */
  private readonly stats = new Map<string, Map<string, EndpointStats>>();

  build(config: RuntimeConfig): Map<string, ActiveCluster> {
    const out = new Map<string, ActiveCluster>();
    const kept = new Map<string, Map<string, EndpointStats>>();
    for (const cluster of config.clusters.values()) {
      const prior = this.stats.get(cluster.name);
      const now = new Map<string, EndpointStats>();
      const endpoints: LbEndpoint[] = cluster.endpoints.map((endpoint) => {
        const key = endpointKey(endpoint.host, endpoint.port);
        const stats = now.get(key) ?? prior?.get(key) ?? new EndpointStats(endpoint.host, endpoint.port);
        now.set(key, stats);
        return { endpoint, stats };
      });
      kept.set(cluster.name, now);
      out.set(cluster.name, { cluster, endpoints, lb: createLoadBalancer(cluster.lbPolicy, endpoints) });
    }
    // Removed endpoints drop out of the view; their in-flight requests still hold their objects.
    this.stats.clear();
    for (const [k, v] of kept) this.stats.set(k, v);
    return out;
  }

  view(clusters: Map<string, ActiveCluster>): ClusterStatsView[] {
    return [...clusters.values()].map(({ cluster, endpoints }) => {
      const eps: EndpointStatsView[] = endpoints.map(({ endpoint, stats }) => ({
        host: endpoint.host,
        port: endpoint.port,
        weight: endpoint.weight,
        healthy: endpoint.healthy,
        activeRequests: stats.active,
        ewmaLatencyMs: stats.ewmaMs === undefined ? null : Math.round(stats.ewmaMs * 1000) / 1000,
        totalRequests: stats.total,
        failedRequests: stats.failures,
      }));
      return {
        name: cluster.name,
        lbPolicy: cluster.lbPolicy,
        protocol: cluster.protocol,
        activeRequests: eps.reduce((s, e) => s + e.activeRequests, 0),
        totalRequests: eps.reduce((s, e) => s + e.totalRequests, 0),
        failedRequests: eps.reduce((s, e) => s + e.failedRequests, 0),
        endpoints: eps,
      };
    });
  }
}
