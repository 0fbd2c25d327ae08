// Automatic mTLS between sidecars, as Envoy resources (the shapes Istio gives its sidecars):
//   inbound listeners   a DownstreamTlsContext requiring a client certificate, TLS 1.3 only;
//                       PERMISSIVE adds tls_inspector and a plaintext chain (transport_protocol
//                       `raw_buffer`) beside the TLS one (`tls`);
//   outbound clusters   per-endpoint transport_socket_matches: endpoints that are sidecars carry
//                       metadata `envoy.transport_socket_match: {tlsMode: weft}` and are reached
//                       with an UpstreamTlsContext that checks the server's SPIFFE ID; the
//                       others (hand-registered Workloads without a sidecar) stay plaintext.
// Certificates are named, never inlined: SDS `default` (the workload's own SVID and key) and
// `ROOTCA` (the trust bundle). A sidecar resolves both locally; the key never travels in xDS.

import type { Endpoint, MtlsMode } from '../registry/model.js';
import { structFromJson } from '../xds/client-codec.js';
import { ADS_SOURCE } from './envoy-fragments.js';

export const TLS_SOCKET = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_SOCKET = 'envoy.transport_sockets.raw_buffer';
export const TLS_INSPECTOR = 'envoy.filters.listener.tls_inspector';
const TLS_TYPES = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.';
const RAW_BUFFER_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
const TLS_INSPECTOR_TYPE =
  'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
export const SDS_CERTIFICATE = 'default';
export const SDS_ROOT_CA = 'ROOTCA';
/** Endpoint metadata key and value that select the mTLS transport socket. */
export const TLS_MODE_KEY = 'tlsMode';
export const TLS_MODE_WEFT = 'weft';
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
const ALPN = ['h2', 'http/1.1'];

/** `spiffe://<td>/ns/<ns>/sa/<sa>`: the identity a workload's sidecar presents. */
export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Istio's SNI for a service port; the sidecar does not route by it, it names the target. */
export function outboundSni(namespace: string, service: string, port: number): string {
  return `outbound_.${port}_._.${service}.${namespace}.svc.cluster.local`;
}

function commonTlsContext(extra: Record<string, unknown>): object {
  const sds = { sds_config: ADS_SOURCE };
  return {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3' },
    alpn_protocols: ALPN,
    tls_certificate_sds_secret_configs: [{ name: SDS_CERTIFICATE, ...sds }],
    ...extra,
  };
}

function downstreamTlsSocket(): object {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': `${TLS_TYPES}DownstreamTlsContext`,
      require_client_certificate: { value: true },
      common_tls_context: commonTlsContext({
        validation_context_sds_secret_config: { name: SDS_ROOT_CA, sds_config: ADS_SOURCE },
      }),
    },
  };
}

/** Filter chains and listener filters of an inbound listener carrying `filters` (RBAC ahead of the last). */
export function inboundTls(mode: MtlsMode, filters: object[]): Record<string, unknown> {
  const tlsChain = { filters, transport_socket: downstreamTlsSocket() };
  if (mode === 'STRICT') return { filter_chains: [tlsChain] };
  return {
    listener_filters: [{ name: TLS_INSPECTOR, typed_config: { '@type': TLS_INSPECTOR_TYPE } }],
    filter_chains: [
      { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, ...tlsChain },
      { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters },
    ],
  };
}

/** The cluster fields that send sidecar endpoints over mTLS and the rest in plaintext. */
export function upstreamTls(sni: string, expectedSpiffeIds: string[]): Record<string, unknown> {
  return {
    transport_socket_matches: [
      {
        name: 'tlsMode-weft',
        match: structFromJson({ [TLS_MODE_KEY]: TLS_MODE_WEFT }),
        transport_socket: {
          name: TLS_SOCKET,
          typed_config: {
            '@type': `${TLS_TYPES}UpstreamTlsContext`,
            sni,
            common_tls_context: commonTlsContext({
              combined_validation_context: {
                default_validation_context: {
                  match_typed_subject_alt_names: expectedSpiffeIds.map((id) => ({
                    san_type: 'URI',
                    matcher: { exact: id },
                  })),
                },
                validation_context_sds_secret_config: { name: SDS_ROOT_CA, sds_config: ADS_SOURCE },
              },
            }),
          },
        },
      },
      {
        name: 'tlsMode-disabled',
        match: structFromJson({}),
        transport_socket: { name: RAW_BUFFER_SOCKET, typed_config: { '@type': RAW_BUFFER_TYPE } },
      },
    ],
  };
}

/** The SPIFFE IDs of a port's sidecar endpoints, sorted and unique. */
export function expectedIdentities(trustDomain: string, endpoints: readonly Endpoint[]): string[] {
  const ids = new Set<string>();
  for (const e of endpoints) {
    if (!e.sidecar) continue;
    const namespace = e.workload.slice(0, e.workload.indexOf('/'));
    ids.add(spiffeIdOf(trustDomain, namespace, e.serviceAccount));
  }
  return [...ids].sort();
}

/** Endpoint metadata selecting the mTLS transport socket. */
export function tlsEndpointMetadata(): object {
  return { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: structFromJson({ [TLS_MODE_KEY]: TLS_MODE_WEFT }) } };
}
