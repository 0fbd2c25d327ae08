// Request path normalization, Envoy's HttpConnectionManager `normalize_path`, `merge_slashes`
// and `path_with_escaped_slashes_action`: one spelling of each path, so that RBAC, routing and
// the app all see the same thing. Without it a DENY on `/admin` is walked around with
// `/./admin`, `//admin`, `/x/../admin`, `/%61dmin` or `/%2e/admin` whenever the app (or the
// framework in front of it) normalizes the path itself. Pure: a request target in, the target to
// use (or why to refuse it, or where to redirect) out. The query is never touched.
//
// Steps, in the order of Envoy's ConnectionManagerUtility::maybeNormalizePath:
//  0. a fragment (`#`) anywhere in the target is refused, whatever the config (Envoy's
//     http_reject_path_with_fragment): a client never sends one, and an app that drops it would
//     see a path the policies never matched;
//  1. escaped slashes `%2F` `%5C` (any case): kept, refused, or decoded (then forwarded, or
//     answered with a redirect to the decoded path);
//  2. normalize_path, RFC 3986 §6.2.2 as Envoy's canonicalPath (Chromium's URL canonicalizer)
//     does it: `\` is `/`; escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded;
//     characters a URI may not hold are escaped; dot segments are removed (§5.2.4), `%2e`
//     counting as a dot and `..` above the root staying at the root; dot segments with
//     parameters (`..;x`, which Tomcat reads as `..`) are dot segments;
//  3. merge_slashes: every run of `/` becomes one.
//
// Where Weft differs from Envoy, deliberately (each is stricter or more regular):
//  - a malformed escape (`%zz`, `%4`, a trailing `%`) is refused; Envoy passes it through as
//    browsers do, but a server that reads `%u0061` as `a` (IIS) would then see a path no policy
//    matched;
//  - kept escapes are upper-cased (`%2f` → `%2F`, RFC 3986 §6.2.2.1), so one spelling reaches
//    the matchers; Envoy keeps their case;
//  - dot segments with parameters are recognised after escapes are decoded (`%2e%2e;x` too);
//  - merge_slashes turns a path of slashes only (`//`) into `/`, where Envoy leaves `//`.
//
// Per-request cost: a target without `%`, `\`, `#`, `//`, `/.` or a character that would be
// escaped is returned as it is after one scan, allocating nothing.

import type { PathNormalization } from '../runtime-config.js';

/** The target to use; or why the request is refused (400); or where to send it (307). */
export type PathVerdict = string | { reject: string } | { redirect: string };

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const QUESTION = 0x3f;
const HEX = '0123456789ABCDEF';

/** Octets whose escape normalize_path decodes: RFC 3986 unreserved. */
const UNRESERVED = new Uint8Array(256);
/** Raw characters normalize_path escapes: controls, space, `"` `<` `>` `^` `` ` `` `{` `|` `}`, DEL, non-ASCII. */
const ESCAPED = new Uint8Array(256);
/** Raw characters that send a target off the fast path. */
const SLOW = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9\-._~]/.test(ch)) UNRESERVED[c] = 1;
  if (c <= 0x20 || c >= 0x7f || '"<>^`{|}#'.includes(ch)) ESCAPED[c] = 1;
  if (ESCAPED[c] === 1 || c === PERCENT || c === BACKSLASH) SLOW[c] = 1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Whether normalizing could change or refuse `target`: false only for an origin-form target
 * whose path holds none of the sequences any step acts on and that has no fragment.
 */
function needsWork(target: string): boolean {
  if (target.charCodeAt(0) !== SLASH) return true;
  for (let i = 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === QUESTION) return target.indexOf('#', i + 1) >= 0;
    if (c > 0xff || SLOW[c] === 1) return true;
    if ((c === SLASH || c === DOT) && target.charCodeAt(i - 1) === SLASH) return true;
  }
  return false;
}

/** The target normalized as the listener asks (`undefined`: only a fragment is refused). */
export function normalizePath(target: string, how: PathNormalization | undefined): PathVerdict {
  return needsWork(target) ? normalizeTarget(target, how) : target;
}

/** normalizePath without the fast path; exported so tests can hold the two to the same answers. */
export function normalizeTarget(target: string, how: PathNormalization | undefined): PathVerdict {
  if (target.includes('#'))
    return { reject: 'the request target has a fragment ("#…"), which a client must not send' };
  // `*` (OPTIONS *) names the server, not a path.
  if (how === undefined || target === '*') return target;
  const q = target.indexOf('?');
  let path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  let redirect = false;
  if (how.escapedSlashes !== 'keep') {
    const unescaped = path.replace(/%(?:2f|5c)/gi, (e) => (e[1] === '2' ? '/' : '\\'));
    if (unescaped !== path) {
      if (how.escapedSlashes === 'reject')
        return {
          reject:
            'the request path has an escaped slash (%2F or %5C), which this listener refuses (path_with_escaped_slashes_action REJECT_REQUEST)',
        };
      redirect = how.escapedSlashes === 'unescapeAndRedirect';
      path = unescaped;
    }
  }
  if (how.normalize) {
    const canonical = canonicalPath(path);
    if (typeof canonical !== 'string') return canonical;
    path = canonical;
  }
  if (how.mergeSlashes) path = path.replace(/\/{2,}/g, '/');
  return redirect ? { redirect: path + query } : path + query;
}

/** RFC 3986 normalization of a path (no query): characters first, then dot segments. */
function canonicalPath(path: string): string | { reject: string } {
  let s = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0)
        return {
          reject: `malformed percent-encoding ${JSON.stringify(path.slice(i, i + 3))} in the request path (a "%" must start %XX)`,
        };
      const octet = hi * 16 + lo;
      if (octet === 0) return { reject: 'the request path has an encoded NUL (%00)' };
      s += UNRESERVED[octet] === 1 ? String.fromCharCode(octet) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else if (c === BACKSLASH) {
      s += '/';
    } else if (c === 0) {
      return { reject: 'the request path has a NUL character' };
    } else if (c > 0xff) {
      // Not from the wire (the codecs read octets), but a string can hold it: its UTF-8 octets.
      for (const octet of Buffer.from(String.fromCodePoint(path.codePointAt(i)!), 'utf8'))
        s += `%${HEX[octet >> 4]}${HEX[octet & 15]}`;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < path.length) i++;
    } else if (ESCAPED[c] === 1) {
      s += `%${HEX[c >> 4]}${HEX[c & 15]}`;
    } else {
      s += path[i];
    }
  }
  // Dot segments. A path without a leading slash gets one, as Chromium's canonicalizer gives it.
  const segments = (s.charCodeAt(0) === SLASH ? s.slice(1) : s).split('/');
  const out: string[] = [];
  for (let k = 0; k < segments.length; k++) {
    const segment = segments[k]!;
    const dots = dotSegment(segment);
    if (dots === 0) {
      out.push(segment);
      continue;
    }
    if (dots === 2) out.pop();
    // A dot segment at the end leaves the path ending in a slash: `/a/b/..` is `/a/`.
    if (k === segments.length - 1) out.push('');
  }
  return `/${out.join('/')}`;
}

/** 1 for `.` and `.;params`, 2 for `..` and `..;params`, 0 for anything else. */
function dotSegment(segment: string): 0 | 1 | 2 {
  if (segment.charCodeAt(0) !== DOT) return 0;
  if (segment.length === 1 || segment.charCodeAt(1) === 0x3b) return 1;
  if (segment.charCodeAt(1) !== DOT) return 0;
  return segment.length === 2 || segment.charCodeAt(2) === 0x3b ? 2 : 0;
}
