// Small Envoy resource fragments shared by the proxyless and the sidecar parts of the compiler.

import type { Endpoint, ServicePort } from '../registry/model.js';
import { tlsEndpointMetadata } from './mtls.js';

export const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

/** HTTP/2 upstream options for Envoy (proxyless gRPC ignores them; our sidecar reads them). */
export function http2Options(protocol: ServicePort['protocol']): Record<string, unknown> {
  if (protocol !== 'HTTP2' && protocol !== 'GRPC') return {};
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

export function edsCluster(name: string, port: Pick<ServicePort, 'protocol'>): object {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name },
    connect_timeout: { seconds: 5, nanos: 0 },
    lb_policy: 'ROUND_ROBIN',
    // Envoy needs to be told to speak HTTP/2 upstream; proxyless gRPC ignores this.
    ...http2Options(port.protocol),
  };
}

/**
 * `markSidecars`: sidecar endpoints carry the metadata that selects the cluster's mTLS
 * transport socket (see mtls.ts); only sidecar nodes get it.
 */
export function loadAssignment(
  name: string,
  endpoints: Pick<Endpoint, 'address' | 'port' | 'sidecar'>[],
  markSidecars = false,
): object {
  if (endpoints.length === 0) return { cluster_name: name, endpoints: [] };
  return {
    cluster_name: name,
    endpoints: [
      {
        // gRPC ignores localities without a weight, so every locality carries one.
        locality: {},
        load_balancing_weight: { value: 1 },
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          ...(markSidecars && e.sidecar ? { metadata: tlsEndpointMetadata() } : {}),
          health_status: 'HEALTHY',
          load_balancing_weight: { value: 1 },
        })),
      },
    ],
  };
}

export function durationMs(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}
