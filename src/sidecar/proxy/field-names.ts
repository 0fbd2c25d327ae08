// Pieces of a header field line read off the wire, for both HTTP/1.1 parsers (requests from
// clients, responses from upstreams): the lower-case name, and the value without its OWS.
// Names seen on nearly every message come back as string literals: no slice, no toLowerCase,
// and no string-table lookup when the name is stored as a HeaderMap key (V8 looks up every
// non-literal key it stores). That halves the cost of parsing a typical head. Any other name
// is sliced, checked to be a token and lower-cased.

/** An RFC 9110 token: field names, methods, transfer-codings. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * What a field value may not hold: it is HTAB, SP, VCHAR and obs-text, so no CR, LF, NUL or
 * other control character (RFC 9110 §5.5; Node checks what it writes the same way).
 */
export const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

// Written lower-case (HTTP/2 style, and Weft's own hops) or in canonical case (most HTTP/1.1
// clients and servers: nginx, curl, Go, browsers).
const COMMON = [
  'accept',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'age',
  'authorization',
  'cache-control',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'cookie',
  'date',
  'etag',
  'expect',
  'expires',
  'host',
  'keep-alive',
  'last-modified',
  'location',
  'server',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-request-id',
];

const SPECIAL_CASE: Record<string, string> = { etag: 'ETag', te: 'TE' };

function canonicalCase(name: string): string {
  return (
    SPECIAL_CASE[name] ?? name.replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase())
  );
}

/** By length: pairs of [as written, lower-case name]. */
const BY_LENGTH: string[][] = [];
for (const name of COMMON) {
  const bucket = (BY_LENGTH[name.length] ??= []);
  bucket.push(name, name, canonicalCase(name), name);
}

/** The field name in s[start, end), lower-cased; undefined when it is not a token. */
export function fieldName(s: string, start: number, end: number): string | undefined {
  const bucket = BY_LENGTH[end - start];
  if (bucket !== undefined) {
    for (let k = 0; k < bucket.length; k += 2) if (s.startsWith(bucket[k]!, start)) return bucket[k + 1];
  }
  const name = s.slice(start, end);
  return TOKEN.test(name) ? name.toLowerCase() : undefined;
}

/** s[start, end) without the SP and HTAB (OWS) at either end. */
export function owsSlice(s: string, start: number, end: number): string {
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  return s.slice(start, end);
}
