// The tcp_proxy network filter: every accepted connection goes, as opaque bytes, to one cluster.
import type { TcpListener } from '../runtime-config.js';
import { durationMs } from './common.js';
import { at, type ProblemSink } from './problems.js';
import { DURATION, isObject, message, str, type MessageSpec } from './subset.js';

export const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

export const TCP_PROXY: MessageSpec = {
  fields: { stat_prefix: str, cluster: str, idle_timeout: message(DURATION) },
  required: ['cluster'],
};

export function translateTcpProxy(
  tp: Record<string, unknown>,
  path: string,
  sink: ProblemSink,
): Pick<TcpListener, 'cluster' | 'idleTimeoutMs'> {
  const cluster = tp.cluster as string;
  if (cluster === '') sink.add(at(path, 'cluster'), 'must not be empty');
  const out: Pick<TcpListener, 'cluster' | 'idleTimeoutMs'> = { cluster };
  if (isObject(tp.idle_timeout)) out.idleTimeoutMs = durationMs(tp.idle_timeout);
  return out;
}
