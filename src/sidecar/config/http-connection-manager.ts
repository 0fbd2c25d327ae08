// The HttpConnectionManager network filter: codec, limits, path normalization, and where the
// routes come from (RDS over ADS, or inline). Its HTTP filter chain is RBAC filters (any number,
// enforced in order) then exactly one router, last; an optional filter the sidecar does not know
// is skipped, as Envoy does.
import type { HttpListener, PathNormalization, RbacRules, RouteTable } from '../runtime-config.js';
import { CONFIG_SOURCE, durationMs, wrapped } from './common.js';
import { at, type ProblemSink } from './problems.js';
import { HTTP_RBAC, HTTP_RBAC_TYPE, translateRbac } from './rbac.js';
import { ROUTE_CONFIGURATION, translateRouteConfiguration } from './route-configuration.js';
import {
  BOOL_VALUE,
  DURATION,
  UINT32_VALUE,
  anyOf,
  anyTypeName,
  bool,
  enumOf,
  isObject,
  list,
  message,
  str,
  type MessageSpec,
} from './subset.js';

export const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';

/** HTTP filters the sidecar implements, by message type; the router has no options we take. */
const HTTP_FILTERS: Record<string, MessageSpec> = {
  [HTTP_RBAC_TYPE]: HTTP_RBAC,
  [ROUTER_TYPE]: { fields: {} },
};

/** An `is_optional` filter the sidecar does not know is left out, not refused (Envoy's rule). */
function skippableFilter(f: unknown): boolean {
  if (!isObject(f) || f.is_optional !== true) return false;
  const t = anyTypeName(f.typed_config);
  return t === undefined || !(t in HTTP_FILTERS);
}

export const HTTP_CONNECTION_MANAGER: MessageSpec = {
  fields: {
    stat_prefix: str,
    codec_type: enumOf('AUTO', 'HTTP1', 'HTTP2'),
    rds: message({
      fields: { config_source: message(CONFIG_SOURCE), route_config_name: str },
      required: ['config_source', 'route_config_name'],
    }),
    route_config: message(ROUTE_CONFIGURATION),
    http_filters: list(
      message({
        fields: { name: str, typed_config: anyOf(HTTP_FILTERS), is_optional: bool },
        required: ['typed_config'],
      }),
      skippableFilter,
    ),
    request_timeout: message(DURATION),
    stream_idle_timeout: message(DURATION),
    max_request_headers_kb: message(UINT32_VALUE),
    normalize_path: message(BOOL_VALUE),
    merge_slashes: bool,
    path_with_escaped_slashes_action: enumOf(
      'IMPLEMENTATION_SPECIFIC_DEFAULT',
      'KEEP_UNCHANGED',
      'REJECT_REQUEST',
      'UNESCAPE_AND_FORWARD',
      'UNESCAPE_AND_REDIRECT',
    ),
  },
  oneOf: [{ fields: ['rds', 'route_config'], required: true }],
};

type Obj = Record<string, unknown>;

export interface TranslatedHcm {
  settings: Pick<
    HttpListener,
    'codec' | 'maxRequestHeadersBytes' | 'requestTimeoutMs' | 'streamIdleTimeoutMs' | 'pathNormalization'
  > & { rbac?: RbacRules[] };
  /** RDS: the RouteConfiguration to look up. */
  rdsName?: string;
  /** Inline route config, already translated. */
  inline?: RouteTable;
}

const CODEC: Record<string, HttpListener['codec']> = { AUTO: 'auto', HTTP1: 'http1', HTTP2: 'http2' };

// Envoy's IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED (and so is an unset field).
const ESCAPED_SLASHES: Record<string, PathNormalization['escapedSlashes']> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: 'keep',
  KEEP_UNCHANGED: 'keep',
  REJECT_REQUEST: 'reject',
  UNESCAPE_AND_FORWARD: 'unescapeAndForward',
  UNESCAPE_AND_REDIRECT: 'unescapeAndRedirect',
};

/** The three path fields; undefined when all are off (Envoy's defaults): the path goes as received. */
function pathNormalization(hcm: Obj): PathNormalization | undefined {
  const how: PathNormalization = {
    normalize: wrapped<boolean>(hcm.normalize_path, false) === true,
    mergeSlashes: hcm.merge_slashes === true,
    escapedSlashes:
      ESCAPED_SLASHES[(hcm.path_with_escaped_slashes_action as string | undefined) ?? ''] ?? 'keep',
  };
  return how.normalize || how.mergeSlashes || how.escapedSlashes !== 'keep' ? how : undefined;
}

/** A checked HCM; `inlineName` names its inline route table when it has one. */
export function translateHcm(hcm: Obj, path: string, inlineName: string, sink: ProblemSink): TranslatedHcm {
  const filters = (Array.isArray(hcm.http_filters) ? (hcm.http_filters as Obj[]) : []).filter(
    (f) => !skippableFilter(f),
  );
  const routers = filters.filter((f) => anyTypeName(f.typed_config) === ROUTER_TYPE).length;
  if (
    filters.length === 0 ||
    anyTypeName(filters[filters.length - 1]!.typed_config) !== ROUTER_TYPE ||
    routers > 1
  ) {
    sink.add(at(path, 'http_filters'), `must be exactly one ${ROUTER_TYPE} filter, last`);
  }
  const settings: TranslatedHcm['settings'] = {
    codec: CODEC[(hcm.codec_type as string | undefined) ?? 'AUTO'] ?? 'auto',
  };
  const rbac: RbacRules[] = [];
  (Array.isArray(hcm.http_filters) ? (hcm.http_filters as Obj[]) : []).forEach((f, i) => {
    if (anyTypeName(f.typed_config) !== HTTP_RBAC_TYPE) return;
    const config = f.typed_config as Obj;
    const prefix = typeof config.rules_stat_prefix === 'string' ? config.rules_stat_prefix : '';
    const rules = translateRbac(config, prefix, at(at(at(path, 'http_filters'), i), 'typed_config'), sink);
    if (rules) rbac.push(rules);
  });
  if (rbac.length > 0) settings.rbac = rbac;
  const kb = wrapped<number>(hcm.max_request_headers_kb, 0);
  if (kb !== undefined) {
    // Envoy's bounds: more than 0 and at most 8 MiB of headers.
    if (kb === 0 || kb > 8192) sink.add(at(path, 'max_request_headers_kb'), `${kb} is not in [1, 8192]`);
    settings.maxRequestHeadersBytes = kb * 1024;
  }
  if (isObject(hcm.request_timeout)) settings.requestTimeoutMs = durationMs(hcm.request_timeout);
  if (isObject(hcm.stream_idle_timeout)) settings.streamIdleTimeoutMs = durationMs(hcm.stream_idle_timeout);
  const paths = pathNormalization(hcm);
  if (paths) settings.pathNormalization = paths;
  if (isObject(hcm.rds)) {
    const name = hcm.rds.route_config_name as string;
    if (name === '') sink.add(at(at(path, 'rds'), 'route_config_name'), 'must not be empty');
    return { settings, rdsName: name };
  }
  const rc = hcm.route_config as Obj;
  return { settings, inline: translateRouteConfiguration(rc, inlineName, at(path, 'route_config'), sink) };
}
