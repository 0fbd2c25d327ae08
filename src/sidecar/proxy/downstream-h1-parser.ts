// The request side of the downstream HTTP/1.1 codec: bytes off a client connection in, request
// heads, body pieces and trailers out. No sockets here, so it can be fuzzed. Strict where a lax
// reading would let two parsers on a path disagree about where a request ends (RFC 9112 §11.2,
// request smuggling): CRLF line endings only, no obs-fold, no whitespace before a colon, field
// names that are tokens, one Content-Length of digits only, never Content-Length together with
// Transfer-Encoding, chunked as the final (and only final) coding, bounded chunk-size lines.
// Anything else is an H1RequestError carrying the status to answer (400, 431 or 501).

import { fieldName, INVALID_VALUE, owsSlice, TOKEN } from './field-names.js';
import type { HeaderMap } from './header-map.js';
import type { ProxyErrorCode } from './local-reply.js';

/** Why a request cannot be read; the message is the sentence answered to the client. */
export class H1RequestError extends Error {
  constructor(
    readonly status: 400 | 431 | 501,
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'H1RequestError';
  }
}

function bad(why: string): H1RequestError {
  return new H1RequestError(400, 'WEFT_E_PROXY_BAD_REQUEST', `bad request: ${why}`);
}

export interface ParsedRequestHead {
  method: string;
  /** As sent: origin-form, absolute-form or `*`. */
  target: string;
  version: '1.0' | '1.1';
  /** Lower-case names, `host` included. */
  headers: HeaderMap;
  /** How the body is delimited: none, Content-Length, or chunked. */
  framing: 'none' | 'length' | 'chunked';
  contentLength: number;
  /** The client wants the connection kept open after the response (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** Connection: upgrade with an Upgrade field: the socket leaves the codec after this head. */
  upgrade: boolean;
  expectContinue: boolean;
}

export interface H1ParserSink {
  onHead(head: ParsedRequestHead): void;
  onBody(chunk: Buffer): void;
  /** The request is complete; trailers only when the chunked body carried some. */
  onComplete(trailers: HeaderMap | undefined): void;
}

const CR = 13;
const LF = 10;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
// The request target: visible ASCII and obs-text bytes (kept as they came, as Node does).
const INVALID_TARGET = /[^\x21-\x7e\x80-\xff]/;
// absolute-form with an authority (`scheme://`), as llhttp reads it; `svc:80` is not a target.
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
const CHUNK_SIZE = /^[0-9A-Fa-f]{1,13}/;
/** A chunk-size line, extensions included; llhttp and Envoy bound them too. */
export const MAX_CHUNK_LINE = 4096;

/** Field lines of s[from, s.length), separated by CRLF, into `out` (lower-case names). */
function parseFieldLines(s: string, from: number, out: HeaderMap, what: string): void {
  let i = from;
  while (i < s.length) {
    let eol = s.indexOf('\r\n', i);
    if (eol < 0) eol = s.length;
    const c0 = s.charCodeAt(i);
    if (c0 === 32 || c0 === 9) throw bad(`obsolete line folding in the ${what}`);
    const colon = s.indexOf(':', i);
    if (colon < 0 || colon > eol) throw bad(`a ${what} line without a colon`);
    const key = fieldName(s, i, colon);
    if (key === undefined) {
      const last = s.charCodeAt(colon - 1);
      throw bad(
        colon > i && (last === 32 || last === 9)
          ? `whitespace between a field name and its colon in the ${what}`
          : `invalid field name in the ${what}`,
      );
    }
    const value = owsSlice(s, colon + 1, eol);
    if (INVALID_VALUE.test(value))
      throw bad(`invalid character in field "${s.slice(i, colon)}" of the ${what}`);
    const prior = out[key];
    if (prior === undefined) out[key] = [value];
    else prior.push(value);
    i = eol + 2;
  }
}

/** Comma-separated list elements, trimmed and lower-cased, empty ones dropped (RFC 9110 §5.6.1). */
function listTokens(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values)
    for (const part of v.split(',')) {
      const t = owsSlice(part, 0, part.length).toLowerCase();
      if (t !== '') out.push(t);
    }
  return out;
}

/**
 * Parses a request head: the request line and header field lines, CRLF-separated, without the
 * blank line that ends it. Throws H1RequestError on anything RFC 9112 lets or makes a server
 * refuse.
 */
export function parseRequestHead(s: string): ParsedRequestHead {
  let eol = s.indexOf('\r\n');
  if (eol < 0) eol = s.length;
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0 || sp1 > eol) throw bad('malformed request line');
  const sp2 = s.indexOf(' ', sp1 + 1);
  if (sp2 < 0 || sp2 > eol) throw bad('malformed request line');
  const method = s.slice(0, sp1);
  if (!TOKEN.test(method)) throw bad('invalid method');
  const v = s.slice(sp2 + 1, eol);
  const version = v === 'HTTP/1.1' ? '1.1' : v === 'HTTP/1.0' ? '1.0' : undefined;
  if (version === undefined) throw bad('unsupported HTTP version (only HTTP/1.0 and HTTP/1.1)');
  if (method === 'CONNECT')
    throw new H1RequestError(
      501,
      'WEFT_E_PROXY_NOT_IMPLEMENTED',
      'not implemented: CONNECT tunnels are not supported',
    );
  const target = s.slice(sp1 + 1, sp2);
  if (target === '' || INVALID_TARGET.test(target)) throw bad('invalid request target');
  if (target.charCodeAt(0) !== 47 && target !== '*' && !ABSOLUTE_FORM.test(target))
    throw bad('invalid request target');

  const headers: HeaderMap = Object.create(null) as HeaderMap;
  parseFieldLines(s, eol + 2, headers, 'request head');

  let framing: ParsedRequestHead['framing'] = 'none';
  let contentLength = 0;
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing cannot be trusted, and
    // with a Content-Length as well the two could be read differently by another hop.
    if (version === '1.0') throw bad('Transfer-Encoding in an HTTP/1.0 request');
    if (cl !== undefined) throw bad('both Content-Length and Transfer-Encoding');
    const codings = listTokens(te);
    if (codings.length === 0) throw bad('empty Transfer-Encoding');
    for (let i = 0; i < codings.length; i++) {
      const c = codings[i]!;
      const semi = c.indexOf(';');
      if (!TOKEN.test(owsSlice(c, 0, semi < 0 ? c.length : semi))) throw bad('invalid Transfer-Encoding');
      if (c === 'chunked' && i !== codings.length - 1) throw bad('chunked applied more than once');
    }
    if (codings[codings.length - 1] !== 'chunked')
      throw bad('Transfer-Encoding does not end with chunked: the body length cannot be known');
    framing = 'chunked';
  } else if (cl !== undefined) {
    if (cl.length !== 1) throw bad('more than one Content-Length');
    if (!CONTENT_LENGTH.test(cl[0]!)) throw bad('invalid Content-Length');
    contentLength = Number(cl[0]);
    if (contentLength > 0) framing = 'length';
  }

  let close = false;
  let keepAliveToken = false;
  let upgradeToken = false;
  const connection = headers['connection'];
  if (connection !== undefined)
    for (const t of listTokens(connection)) {
      if (t === 'close') close = true;
      else if (t === 'keep-alive') keepAliveToken = true;
      else if (t === 'upgrade') upgradeToken = true;
    }
  const expect = headers['expect'];
  return {
    method,
    target,
    version,
    headers,
    framing,
    contentLength,
    keepAlive: !close && (version === '1.1' || keepAliveToken),
    upgrade: upgradeToken && headers['upgrade'] !== undefined,
    expectContinue: expect !== undefined && expect.some((e) => e.toLowerCase() === '100-continue'),
  };
}

/** Parses one chunk-size line (without its CRLF): the size, extensions checked and ignored. */
export function parseChunkSize(line: string): number {
  const m = CHUNK_SIZE.exec(line);
  if (!m) throw bad('invalid chunk size');
  const rest = line.length - m[0].length;
  // Extensions (`;name=value`) follow the size directly: llhttp's strict reading, no BWS.
  if (rest > 0 && (line.charCodeAt(m[0].length) !== 59 || INVALID_VALUE.test(line)))
    throw bad('invalid chunk size line');
  return parseInt(m[0], 16);
}

/** Trailer field lines (the text before the final blank line). */
export function parseTrailers(s: string): HeaderMap {
  const out: HeaderMap = Object.create(null) as HeaderMap;
  parseFieldLines(s, 0, out, 'trailers');
  return out;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  /** One request read: the caller resets the parser once it wants the next. */
  Done,
  /** An Upgrade head: the bytes after it belong to another protocol. */
  Upgrade,
}

/**
 * Reads requests one at a time: after each complete request (or an Upgrade head) it stops and
 * hands back the bytes it did not consume; reset() lets it go on to the next request.
 */
export class H1RequestParser {
  private state = State.Head;
  private remaining = 0;
  /**
   * An unfinished head, chunk-size line or trailer section, kept as the reads that brought it:
   * joined once it is complete, so a client sending a byte at a time costs linear work, not
   * quadratic (one concat per read).
   */
  private readonly parts: Buffer[] = [];
  private partsLen = 0;

  constructor(
    private readonly sink: H1ParserSink,
    /** Request line and fields, in bytes; more is a 431. Read per head: a listener update moves it. */
    public maxHeadBytes: number,
  ) {}

  /** Between requests: nothing of the next one read yet. */
  get idle(): boolean {
    return this.state === State.Head && this.partsLen === 0;
  }
  get done(): boolean {
    return this.state === State.Done;
  }
  get upgraded(): boolean {
    return this.state === State.Upgrade;
  }

  reset(): void {
    this.state = State.Head;
    this.parts.length = 0;
    this.partsLen = 0;
  }

  /**
   * Consumes `chunk`; returns the bytes after a request that completed in it (or after an
   * Upgrade head), which the caller keeps until it calls reset(). Throws H1RequestError.
   */
  execute(chunk: Buffer): Buffer | undefined {
    let buf = chunk;
    if (this.partsLen > 0) {
      if (!this.completesPart(chunk)) return undefined;
      this.parts.push(chunk);
      buf = Buffer.concat(this.parts, this.partsLen + chunk.length);
      this.parts.length = 0;
      this.partsLen = 0;
    }
    let off = 0;
    const len = buf.length;
    while (off < len) {
      switch (this.state) {
        case State.Head: {
          // RFC 9112 §2.2: empty lines before a request line are ignored.
          while (off + 1 < len && buf[off] === CR && buf[off + 1] === LF) off += 2;
          if (off >= len) return undefined;
          const end = this.findBlankLine(buf, off, 'request head');
          if (end < 0) return undefined;
          const head = parseRequestHead(buf.toString('latin1', off, end));
          off = end + 4;
          this.sink.onHead(head);
          if (head.upgrade) {
            this.state = State.Upgrade;
            return off < len ? buf.subarray(off) : undefined;
          }
          if (head.framing === 'chunked') this.state = State.ChunkSize;
          else if (head.framing === 'length') {
            this.state = State.Length;
            this.remaining = head.contentLength;
          } else {
            this.state = State.Done;
            this.sink.onComplete(undefined);
            return off < len ? buf.subarray(off) : undefined;
          }
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, len - off);
          this.sink.onBody(off === 0 && n === len ? buf : buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.Done;
            this.sink.onComplete(undefined);
            return off < len ? buf.subarray(off) : undefined;
          }
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf(LF, off);
          if (eol < 0) {
            if (len - off > MAX_CHUNK_LINE) throw bad('chunk size line too long');
            this.keep(buf.subarray(off));
            return undefined;
          }
          if (eol - off > MAX_CHUNK_LINE) throw bad('chunk size line too long');
          if (eol === off || buf[eol - 1] !== CR) throw bad('bare LF in chunk size line');
          const size = parseChunkSize(buf.toString('latin1', off, eol - 1));
          off = eol + 1;
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, len - off);
          this.sink.onBody(off === 0 && n === len ? buf : buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.ChunkEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkEnd: {
          // The CRLF after a chunk's data; it may be split across reads.
          while (this.remaining > 0 && off < len) {
            if (buf[off] !== (this.remaining === 2 ? CR : LF)) throw bad('chunk data not followed by CRLF');
            off++;
            this.remaining--;
          }
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          if (len - off < 2) {
            this.keep(buf.subarray(off));
            return undefined;
          }
          let trailers: HeaderMap | undefined;
          if (buf[off] === CR && buf[off + 1] === LF) off += 2;
          else {
            const end = this.findBlankLine(buf, off, 'trailers');
            if (end < 0) return undefined;
            trailers = parseTrailers(buf.toString('latin1', off, end));
            off = end + 4;
          }
          this.state = State.Done;
          this.sink.onComplete(trailers);
          return off < len ? buf.subarray(off) : undefined;
        }
        case State.Done:
        case State.Upgrade:
          return buf.subarray(off);
      }
    }
    return undefined;
  }

  /**
   * Where the CRLFCRLF ending a head or trailer section starting at `off` is; -1 when it has not
   * arrived (the bytes are kept). A bare LF is refused at once rather than when the end comes.
   */
  private findBlankLine(buf: Buffer, off: number, what: string): number {
    const end = buf.indexOf(CRLFCRLF, off);
    const limit = this.maxHeadBytes;
    if (end >= 0) {
      if (end - off > limit) throw this.tooLarge(what);
      return end;
    }
    if (buf.length - off > limit) throw this.tooLarge(what);
    for (let i = buf.indexOf(LF, off); i >= 0; i = buf.indexOf(LF, i + 1))
      if (i === off || buf[i - 1] !== CR) throw bad(`bare LF in the ${what}`);
    this.keep(buf.subarray(off));
    return -1;
  }

  private keep(part: Buffer): void {
    this.parts.push(part);
    this.partsLen += part.length;
  }

  /** The byte `back` places before the end of the kept parts (1: the last one). */
  private keptByte(back: number): number {
    for (let i = this.parts.length - 1; i >= 0; i--) {
      const p = this.parts[i]!;
      if (back <= p.length) return p[p.length - back]!;
      back -= p.length;
    }
    return -1;
  }

  /**
   * Whether `chunk` completes what is kept (then the caller joins them and parses as usual);
   * if not, it is checked — size, bare LFs — and kept too.
   */
  private completesPart(chunk: Buffer): boolean {
    if (this.state === State.ChunkSize) {
      if (chunk.indexOf(LF) >= 0) return true;
      if (this.partsLen + chunk.length > MAX_CHUNK_LINE) throw bad('chunk size line too long');
      this.keep(chunk);
      return false;
    }
    // A head or trailer section: complete when CRLFCRLF is in the chunk or spans into it.
    if (this.partsLen < 4 || chunk.indexOf(CRLFCRLF) >= 0) return true;
    for (let k = 1; k <= 3; k++) {
      let spans = chunk.length >= 4 - k;
      for (let j = 0; spans && j < k; j++) spans = this.keptByte(k - j) === CRLFCRLF[j];
      for (let j = k; spans && j < 4; j++) spans = chunk[j - k] === CRLFCRLF[j];
      if (spans) return true;
    }
    const what = this.state === State.Trailers ? 'trailers' : 'request head';
    if (this.partsLen + chunk.length > this.maxHeadBytes) throw this.tooLarge(what);
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1))
      if ((i === 0 ? this.keptByte(1) : chunk[i - 1]) !== CR) throw bad(`bare LF in the ${what}`);
    this.keep(chunk);
    return false;
  }

  private tooLarge(what: string): H1RequestError {
    return new H1RequestError(
      431,
      'WEFT_E_PROXY_HEADERS_TOO_LARGE',
      `request headers too large: the listener accepts at most ${this.maxHeadBytes} bytes of ${what === 'trailers' ? 'request trailers' : 'request headers'}`,
    );
  }
}
