// Listener → RuntimeListener: a socket address and a filter chain ending in one terminal
// network filter, an HttpConnectionManager (HTTP) or a tcp_proxy (opaque TCP); a tcp_proxy may
// have network RBAC filters ahead of it, checked at accept. The chain may terminate mTLS (a
// DownstreamTlsContext). The one filter_chain_match the sidecar honours is PERMISSIVE mTLS: a
// `tls` chain and a `raw_buffer` chain with the same filters, told apart by tls_inspector. It
// does not pick chains by SNI, ALPN or destination.
import type {
  ListenerDirection,
  ListenerTls,
  RbacRules,
  RouteTable,
  RuntimeListener,
} from '../runtime-config.js';
import { ADDRESS, socketAddress } from './common.js';
import { HCM_TYPE, HTTP_CONNECTION_MANAGER, translateHcm } from './http-connection-manager.js';
import { at, type ProblemSink } from './problems.js';
import { NETWORK_RBAC, NETWORK_RBAC_TYPE, translateRbac } from './rbac.js';
import { TCP_PROXY, TCP_PROXY_TYPE, translateTcpProxy } from './tcp-proxy.js';
import {
  DOWNSTREAM_TRANSPORT_SOCKET,
  LISTENER_FILTER,
  TLS_INSPECTOR_TYPE,
  checkDownstreamTls,
} from './transport-socket.js';
import { anyOf, anyTypeName, enumOf, isObject, list, message, str, type MessageSpec } from './subset.js';

const FILTER_CHAIN: MessageSpec = {
  fields: {
    name: str,
    filter_chain_match: message({ fields: { transport_protocol: enumOf('tls', 'raw_buffer') } }),
    transport_socket: message(DOWNSTREAM_TRANSPORT_SOCKET),
    filters: list(
      message({
        fields: {
          name: str,
          typed_config: anyOf({
            [NETWORK_RBAC_TYPE]: NETWORK_RBAC,
            [HCM_TYPE]: HTTP_CONNECTION_MANAGER,
            [TCP_PROXY_TYPE]: TCP_PROXY,
          }),
        },
        required: ['typed_config'],
      }),
    ),
  },
};

export const LISTENER: MessageSpec = {
  fields: {
    name: str,
    address: message(ADDRESS),
    filter_chains: list(message(FILTER_CHAIN)),
    traffic_direction: enumOf('UNSPECIFIED', 'INBOUND', 'OUTBOUND'),
    listener_filters: list(message(LISTENER_FILTER)),
  },
  required: ['name', 'address'],
};

type Obj = Record<string, unknown>;

export interface TranslatedListener {
  listener: RuntimeListener;
  /** The inline route table of an HTTP listener without RDS. */
  inline?: RouteTable;
}

/**
 * Without traffic_direction, the direction comes from the name, as the compiler spells it
 * (`inbound|<port>` for mesh traffic to the app, anything else is the app's outbound traffic).
 */
function direction(l: Obj, name: string): ListenerDirection {
  if (l.traffic_direction === 'INBOUND') return 'inbound';
  if (l.traffic_direction === 'OUTBOUND') return 'outbound';
  return name.startsWith('inbound') ? 'inbound' : 'outbound';
}

/** A listener already checked against LISTENER, or undefined when it has problems. */
export function translateListener(l: Obj, sink: ProblemSink): TranslatedListener | undefined {
  const before = sink.count;
  const name = l.name as string;
  const addr = socketAddress(l.address as Obj, 'address', sink, { portZeroOk: true });
  // An empty list arrives as an absent field; both read as zero chains or filters.
  const chains = (l.filter_chains as Obj[] | undefined) ?? [];
  const tls = listenerTls(l, chains, sink);
  if (tls === null) return undefined;
  const filters = (chains[0]!.filters as Obj[] | undefined) ?? [];
  const last = filters.length - 1;
  const rbacFilters = filters.slice(0, Math.max(last, 0));
  if (filters.length === 0 || rbacFilters.some((f) => anyTypeName(f.typed_config) !== NETWORK_RBAC_TYPE)) {
    sink.add(
      'filter_chains[0].filters',
      `must end in one ${HCM_TYPE} or ${TCP_PROXY_TYPE}, with only ${NETWORK_RBAC_TYPE} filters ahead of it (found ${filters.length} filter${filters.length === 1 ? '' : 's'})`,
    );
    return undefined;
  }
  const path = `filter_chains[0].filters[${last}].typed_config`;
  const config = filters[last]!.typed_config as Obj;
  if (anyTypeName(config) === NETWORK_RBAC_TYPE) {
    sink.add(path, `${NETWORK_RBAC_TYPE} must be followed by a tcp_proxy`);
    return undefined;
  }
  const rbac: RbacRules[] = [];
  rbacFilters.forEach((f, i) => {
    const c = f.typed_config as Obj;
    const rules = translateRbac(
      c,
      c.stat_prefix as string,
      at(at('filter_chains[0].filters', i), 'typed_config'),
      sink,
    );
    if (rules) rbac.push(rules);
  });
  const base = {
    name,
    direction: direction(l, name),
    host: addr?.host ?? '',
    port: addr?.port ?? 0,
    ...(tls ? { tls } : {}),
  };
  let out: TranslatedListener;
  if (anyTypeName(config) === TCP_PROXY_TYPE) {
    const tcp = translateTcpProxy(config, path, sink);
    out = { listener: { ...base, kind: 'tcp', ...tcp, ...(rbac.length > 0 ? { rbac } : {}) } };
  } else if (rbacFilters.length > 0) {
    // Not implemented for HTTP listeners: the HTTP RBAC filter inside the HCM does that job.
    sink.add(
      'filter_chains[0].filters[0]',
      `a ${NETWORK_RBAC_TYPE} filter is supported only ahead of a tcp_proxy; use envoy.filters.http.rbac inside the HttpConnectionManager`,
    );
    return undefined;
  } else {
    // An inline table is private to its listener; naming it after the listener keeps it apart
    // from RDS tables unless it names itself.
    const inlineName =
      typeof (config.route_config as Obj | undefined)?.name === 'string'
        ? ((config.route_config as Obj).name as string) || name
        : name;
    const hcm = translateHcm(config, path, inlineName, sink);
    out = {
      listener: { ...base, kind: 'http', ...hcm.settings, routeConfig: hcm.rdsName ?? inlineName },
      ...(hcm.inline ? { inline: hcm.inline } : {}),
    };
  }
  return sink.count === before ? out : undefined;
}

/**
 * The listener's mTLS from its chains: undefined for one plaintext chain, STRICT for one TLS
 * chain, PERMISSIVE for the tls/raw_buffer pair; null (problems reported) for anything else.
 */
function listenerTls(l: Obj, chains: Obj[], sink: ProblemSink): ListenerTls | undefined | null {
  const before = sink.count;
  const inspector = ((l.listener_filters as Obj[] | undefined) ?? []).some(
    (f) => anyTypeName(f.typed_config as Obj) === TLS_INSPECTOR_TYPE,
  );
  chains.forEach((c, i) => {
    if (isObject(c.transport_socket))
      checkDownstreamTls(c.transport_socket, at(at('filter_chains', i), 'transport_socket'), sink);
  });
  if (chains.length === 1) {
    const chain = chains[0]!;
    if (isObject(chain.filter_chain_match)) {
      sink.add('filter_chains[0].filter_chain_match', 'is only supported with a tls and a raw_buffer chain');
    }
    if (sink.count !== before) return null;
    return isObject(chain.transport_socket) ? { mode: 'STRICT' } : undefined;
  }
  if (chains.length !== 2) {
    sink.add(
      'filter_chains',
      `must hold one filter chain, or a tls and a raw_buffer chain (found ${chains.length})`,
    );
    return null;
  }
  const protocols = chains.map((c) => (c.filter_chain_match as Obj | undefined)?.transport_protocol);
  const tlsIndex = protocols.indexOf('tls');
  const rawIndex = protocols.indexOf('raw_buffer');
  if (tlsIndex < 0 || rawIndex < 0) {
    sink.add('filter_chains', 'two chains must match transport_protocol "tls" and "raw_buffer"');
    return null;
  }
  if (!isObject(chains[tlsIndex]!.transport_socket))
    sink.add(at(at('filter_chains', tlsIndex), 'transport_socket'), 'is required on the tls chain');
  if (isObject(chains[rawIndex]!.transport_socket))
    sink.add(at(at('filter_chains', rawIndex), 'transport_socket'), 'must be absent on the raw_buffer chain');
  if (JSON.stringify(chains[0]!.filters) !== JSON.stringify(chains[1]!.filters))
    sink.add('filter_chains[1].filters', "must equal the other chain's filters");
  if (!inspector)
    sink.add(
      'listener_filters',
      'must hold envoy.filters.listener.tls_inspector to choose between the chains',
    );
  return sink.count === before ? { mode: 'PERMISSIVE' } : null;
}
