// Pieces several resource types share: the ADS config source, socket addresses, string and
// regex matchers, and the conversions of Envoy's Duration, wrapper and RE2 values.
import { isIP } from 'node:net';
import { re2Problem } from '../../resources/regex.js';
import type { StringMatcher } from '../runtime-config.js';
import { at, type ProblemSink } from './problems.js';
import { bool, enumOf, message, str, uint, EMPTY, isObject, type MessageSpec } from './subset.js';

/** The sidecar gets everything over its one ADS stream: `ads: {}` is the only source. */
export const CONFIG_SOURCE: MessageSpec = {
  fields: { ads: message(EMPTY), resource_api_version: enumOf('V3') },
  required: ['ads'],
};

export const SOCKET_ADDRESS: MessageSpec = {
  fields: { address: str, port_value: uint, protocol: enumOf('TCP') },
  required: ['address'],
};

export const ADDRESS: MessageSpec = {
  fields: { socket_address: message(SOCKET_ADDRESS) },
  required: ['socket_address'],
};

export const REGEX_MATCHER: MessageSpec = { fields: { regex: str }, required: ['regex'] };

export const STRING_MATCHER: MessageSpec = {
  fields: {
    exact: str,
    prefix: str,
    suffix: str,
    contains: str,
    safe_regex: message(REGEX_MATCHER),
    ignore_case: bool,
  },
  oneOf: [{ fields: ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'], required: true }],
};

// Readers below run on objects checkMessage accepted, so fields have the declared shapes.
type Obj = Record<string, unknown>;

export function durationMs(d: unknown): number {
  const o = isObject(d) ? d : {};
  const seconds = typeof o.seconds === 'number' ? o.seconds : 0;
  const nanos = typeof o.nanos === 'number' ? o.nanos : 0;
  return seconds * 1000 + Math.round(nanos / 1e6);
}

/** A wrapper's value (`{value: 3}`); an empty wrapper is the default value, which protobuf omits. */
export function wrapped<T>(w: unknown, zero: T): T | undefined {
  if (!isObject(w)) return undefined;
  return (w.value as T | undefined) ?? zero;
}

/** `host:port` with an IP literal, as Envoy needs for listeners and resolved endpoints. */
export function socketAddress(
  addr: Obj,
  path: string,
  sink: ProblemSink,
  opts: { portZeroOk: boolean },
): { host: string; port: number } | undefined {
  const sa = addr.socket_address as Obj;
  const host = sa.address as string;
  const port = (sa.port_value as number | undefined) ?? 0;
  let ok = true;
  if (isIP(host) === 0) {
    sink.add(at(at(path, 'socket_address'), 'address'), `${JSON.stringify(host)} is not an IP address`);
    ok = false;
  }
  if (port > 65535 || (port === 0 && !opts.portZeroOk)) {
    sink.add(at(at(path, 'socket_address'), 'port_value'), `${port} is not a port (1-65535)`);
    ok = false;
  }
  return ok ? { host, port } : undefined;
}

/**
 * An Envoy RE2 pattern as a JavaScript RegExp. Envoy's safe_regex matches the whole value, so
 * `anchored` wraps it in `^(?:…)$`; regex_rewrite instead replaces every match (RE2
 * GlobalReplace), so it is compiled unanchored with the `g` flag.
 */
export function compileRe2(
  pattern: string,
  path: string,
  sink: ProblemSink,
  anchored = true,
): RegExp | undefined {
  const { source, flags } = re2ToJs(pattern);
  const problem = re2Problem(source);
  if (problem !== undefined) {
    sink.add(path, `${JSON.stringify(pattern)} ${problem}`);
    return undefined;
  }
  try {
    return anchored ? new RegExp(`^(?:${source})$`, flags) : new RegExp(source, `${flags}g`);
  } catch (e) {
    sink.add(path, `${JSON.stringify(pattern)} is not a valid regular expression: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * The few RE2 spellings JavaScript lacks: `(?P<name>` groups, `\A` and `\z` anchors, and a
 * leading `(?i)`. Everything else RE2 accepts means the same in a JavaScript RegExp.
 */
function re2ToJs(pattern: string): { source: string; flags: string } {
  let flags = '';
  let p = pattern;
  if (p.startsWith('(?i)')) {
    flags = 'i';
    p = p.slice(4);
  }
  let out = '';
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') {
      const next = p[i + 1] ?? '';
      if (!inClass && next === 'A') out += '^';
      else if (!inClass && next === 'z') out += '$';
      else out += c + next;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '(' && p.startsWith('?P<', i + 1)) {
      out += '(?<';
      i += 3;
      continue;
    }
    out += c;
  }
  return { source: out, flags };
}

/** RE2 substitutions name groups `\1`; JavaScript's replace wants `$1` and a literal `$$`. */
export function re2Substitution(sub: string): string {
  let out = '';
  for (let i = 0; i < sub.length; i++) {
    const c = sub[i]!;
    if (c === '\\' && /[0-9]/.test(sub[i + 1] ?? '')) {
      out += `$${sub[i + 1]}`;
      i++;
    } else if (c === '\\' && sub[i + 1] === '\\') {
      out += '\\';
      i++;
    } else out += c === '$' ? '$$' : c;
  }
  return out;
}

/** A checked StringMatcher as the runtime form, or undefined when its regex does not compile. */
export function stringMatcher(m: Obj, path: string, sink: ProblemSink): StringMatcher | undefined {
  const ignoreCase = m.ignore_case === true ? { ignoreCase: true } : {};
  if (typeof m.exact === 'string') return { exact: m.exact, ...ignoreCase };
  if (typeof m.prefix === 'string') return { prefix: m.prefix, ...ignoreCase };
  if (typeof m.suffix === 'string') return { suffix: m.suffix, ...ignoreCase };
  if (typeof m.contains === 'string') return { contains: m.contains, ...ignoreCase };
  const re = m.safe_regex as Obj;
  const regex = compileRe2(re.regex as string, at(at(path, 'safe_regex'), 'regex'), sink);
  return regex === undefined ? undefined : { regex };
}
