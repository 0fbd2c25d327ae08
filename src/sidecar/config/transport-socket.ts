// Transport sockets: the mTLS subset of envoy.transport_sockets.tls the sidecar implements, as
// the compiler emits it (src/compiler/mtls.ts). Certificates come only by SDS name — `default`
// (the workload's SVID and key) and `ROOTCA` (the trust bundle) — which the sidecar resolves to
// its own credentials; inline certificates, other secret names, TLS below 1.3 and other SAN
// matchers are refused by field path.
import type { UpstreamTls } from '../runtime-config.js';
import { CONFIG_SOURCE } from './common.js';
import { at, type ProblemSink } from './problems.js';
import { BOOL_VALUE, EMPTY, anyOf, enumOf, list, mapOf, message, str, type MessageSpec } from './subset.js';

export const DOWNSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const RAW_BUFFER_TYPE = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
export const TLS_INSPECTOR_TYPE = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
export const SDS_CERTIFICATE = 'default';
export const SDS_ROOT_CA = 'ROOTCA';
/** Endpoint metadata `envoy.transport_socket_match: {tlsMode: weft}` selects the mTLS socket. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';
export const TLS_MODE_WEFT = 'weft';

const SDS_SECRET_CONFIG: MessageSpec = {
  fields: { name: str, sds_config: message(CONFIG_SOURCE) },
  required: ['name', 'sds_config'],
};

const SAN_MATCHER: MessageSpec = {
  fields: {
    san_type: enumOf('URI'),
    matcher: message({ fields: { exact: str }, required: ['exact'] }),
  },
  required: ['san_type', 'matcher'],
};

const COMMON_TLS_CONTEXT: MessageSpec = {
  fields: {
    tls_params: message({
      fields: {
        tls_minimum_protocol_version: enumOf('TLSv1_3'),
        tls_maximum_protocol_version: enumOf('TLSv1_3'),
      },
      required: ['tls_minimum_protocol_version'],
    }),
    alpn_protocols: list(str),
    tls_certificate_sds_secret_configs: list(message(SDS_SECRET_CONFIG)),
    validation_context_sds_secret_config: message(SDS_SECRET_CONFIG),
    combined_validation_context: message({
      fields: {
        default_validation_context: message({
          fields: { match_typed_subject_alt_names: list(message(SAN_MATCHER)) },
        }),
        validation_context_sds_secret_config: message(SDS_SECRET_CONFIG),
      },
      required: ['default_validation_context', 'validation_context_sds_secret_config'],
    }),
  },
  required: ['tls_params', 'tls_certificate_sds_secret_configs'],
  oneOf: [
    {
      fields: ['validation_context_sds_secret_config', 'combined_validation_context'],
      required: true,
    },
  ],
};

const DOWNSTREAM_TLS_CONTEXT: MessageSpec = {
  fields: {
    require_client_certificate: message(BOOL_VALUE),
    common_tls_context: message(COMMON_TLS_CONTEXT),
  },
  required: ['require_client_certificate', 'common_tls_context'],
};

const UPSTREAM_TLS_CONTEXT: MessageSpec = {
  fields: { sni: str, common_tls_context: message(COMMON_TLS_CONTEXT) },
  required: ['sni', 'common_tls_context'],
};

export const DOWNSTREAM_TRANSPORT_SOCKET: MessageSpec = {
  fields: { name: str, typed_config: anyOf({ [DOWNSTREAM_TLS_TYPE]: DOWNSTREAM_TLS_CONTEXT }) },
  required: ['typed_config'],
};

const UPSTREAM_TRANSPORT_SOCKET: MessageSpec = {
  fields: {
    name: str,
    typed_config: anyOf({ [UPSTREAM_TLS_TYPE]: UPSTREAM_TLS_CONTEXT, [RAW_BUFFER_TYPE]: EMPTY }),
  },
  required: ['typed_config'],
};

/** google.protobuf.Struct `{tlsMode: "<string>"}` in its decoded form, or empty. */
const TLS_MODE_STRUCT: MessageSpec = {
  fields: {
    fields: mapOf(['tlsMode'], message({ fields: { stringValue: str }, required: ['stringValue'] })),
  },
};

export const TRANSPORT_SOCKET_MATCH_SPEC: MessageSpec = {
  fields: {
    name: str,
    match: message(TLS_MODE_STRUCT),
    transport_socket: message(UPSTREAM_TRANSPORT_SOCKET),
  },
  required: ['transport_socket'],
};

export const ENDPOINT_METADATA: MessageSpec = {
  fields: { filter_metadata: mapOf([TRANSPORT_SOCKET_MATCH], message(TLS_MODE_STRUCT)) },
};

export const LISTENER_FILTER: MessageSpec = {
  fields: { name: str, typed_config: anyOf({ [TLS_INSPECTOR_TYPE]: EMPTY }) },
  required: ['typed_config'],
};

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});

function typeName(socket: Obj): string {
  const type = obj(socket.typed_config)['@type'];
  return typeof type === 'string' ? type.slice(type.lastIndexOf('/') + 1) : '';
}

/** The tlsMode a decoded Struct names, or undefined. */
export function tlsModeOf(struct: unknown): string | undefined {
  const v = obj(obj(obj(struct).fields).tlsMode).stringValue;
  return typeof v === 'string' ? v : undefined;
}

/** Checks the parts every TLS context shares: SDS names, ALPN. */
function checkCommon(common: Obj, path: string, sink: ProblemSink): void {
  const certs = (common.tls_certificate_sds_secret_configs as Obj[] | undefined) ?? [];
  if (certs.length !== 1 || certs[0]!.name !== SDS_CERTIFICATE) {
    sink.add(
      at(path, 'tls_certificate_sds_secret_configs'),
      `must name exactly the SDS secret "${SDS_CERTIFICATE}" (the workload's own SVID)`,
    );
  }
  const combined = common.combined_validation_context as Obj | undefined;
  const validation = (combined?.validation_context_sds_secret_config ??
    common.validation_context_sds_secret_config) as Obj | undefined;
  if (validation !== undefined && validation.name !== SDS_ROOT_CA) {
    const where = combined
      ? at(at(path, 'combined_validation_context'), 'validation_context_sds_secret_config')
      : at(path, 'validation_context_sds_secret_config');
    sink.add(at(where, 'name'), `must be "${SDS_ROOT_CA}" (the mesh trust bundle)`);
  }
  const alpn = (common.alpn_protocols as string[] | undefined) ?? [];
  alpn.forEach((p, i) => {
    if (p !== 'h2' && p !== 'http/1.1')
      sink.add(at(at(path, 'alpn_protocols'), i), `"${p}" is not h2 or http/1.1`);
  });
}

/** A DownstreamTlsContext transport socket checked against DOWNSTREAM_TRANSPORT_SOCKET. */
export function checkDownstreamTls(socket: Obj, path: string, sink: ProblemSink): void {
  const config = obj(socket.typed_config);
  if (obj(config.require_client_certificate).value !== true) {
    sink.add(at(at(path, 'typed_config'), 'require_client_certificate'), 'must be true (mutual TLS)');
  }
  const common = obj(config.common_tls_context);
  const commonPath = at(at(path, 'typed_config'), 'common_tls_context');
  if (common.combined_validation_context !== undefined) {
    sink.add(
      at(commonPath, 'combined_validation_context'),
      'is not supported on a listener (any SPIFFE ID of the trust bundle is accepted; authorize with RBAC)',
    );
  }
  checkCommon(common, commonPath, sink);
}

/**
 * The cluster's UpstreamTls from its transport_socket_matches: one `{tlsMode: weft}` entry with
 * an UpstreamTlsContext (the SPIFFE IDs to expect) and one empty match with raw_buffer.
 */
export function translateSocketMatches(
  matches: Obj[],
  path: string,
  sink: ProblemSink,
): UpstreamTls | undefined {
  let tls: UpstreamTls | undefined;
  matches.forEach((m, i) => {
    const mpath = at(path, i);
    const mode = tlsModeOf(m.match);
    const socket = obj(m.transport_socket);
    const type = typeName(socket);
    if (mode === undefined) {
      if (type !== RAW_BUFFER_TYPE)
        sink.add(at(mpath, 'transport_socket'), 'the catch-all match (empty) must use raw_buffer');
      return;
    }
    if (mode !== TLS_MODE_WEFT) {
      sink.add(at(at(at(mpath, 'match'), 'fields'), 'tlsMode'), `only "${TLS_MODE_WEFT}" is supported`);
      return;
    }
    if (type !== UPSTREAM_TLS_TYPE) {
      sink.add(at(mpath, 'transport_socket'), `tlsMode ${TLS_MODE_WEFT} must use an UpstreamTlsContext`);
      return;
    }
    const config = obj(socket.typed_config);
    const common = obj(config.common_tls_context);
    const commonPath = at(at(at(mpath, 'transport_socket'), 'typed_config'), 'common_tls_context');
    checkCommon(common, commonPath, sink);
    const sans = (obj(obj(common.combined_validation_context).default_validation_context)
      .match_typed_subject_alt_names ?? []) as Obj[];
    if (sans.length === 0) {
      sink.add(
        at(commonPath, 'combined_validation_context'),
        'must list the SPIFFE IDs expected of the server (match_typed_subject_alt_names)',
      );
      return;
    }
    tls = {
      sni: config.sni as string,
      expectedSpiffeIds: sans.map((s) => obj(s.matcher).exact as string),
    };
  });
  return tls;
}
