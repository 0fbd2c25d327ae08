// Shared by the downstream HTTP/1.1 parser tests: feeds pieces of a byte stream through one
// parser the way a connection does (reset after each complete request) and records what it read.

import {
  H1RequestError,
  H1RequestParser,
  type ParsedRequestHead,
} from '../../../../src/sidecar/proxy/downstream-h1-parser.js';
import type { HeaderMap } from '../../../../src/sidecar/proxy/header-map.js';

export interface Parsed {
  heads: ParsedRequestHead[];
  bodies: string[];
  trailers: Array<HeaderMap | undefined>;
  /** Bytes after the last complete request (or after an Upgrade head). */
  rest: string;
  error: H1RequestError | undefined;
}

/** Feeds `pieces` one by one, going on to the next request after each complete one. */
export function parse(pieces: Array<string | Buffer>, maxHeadBytes = 8192): Parsed {
  const out: Parsed = { heads: [], bodies: [], trailers: [], rest: '', error: undefined };
  let body: Buffer[] = [];
  const parser = new H1RequestParser(
    {
      onHead: (h) => {
        out.heads.push(h);
        body = [];
      },
      onBody: (c) => body.push(Buffer.from(c)),
      onComplete: (t) => {
        out.bodies.push(Buffer.concat(body).toString('latin1'));
        out.trailers.push(t);
      },
    },
    maxHeadBytes,
  );
  try {
    for (const p of pieces) {
      let buf: Buffer | undefined = typeof p === 'string' ? Buffer.from(p, 'latin1') : p;
      while (buf !== undefined && buf.length > 0) {
        if (parser.upgraded) {
          out.rest += buf.toString('latin1');
          break;
        }
        if (parser.done) parser.reset();
        buf = parser.execute(buf);
        if (parser.upgraded && buf) {
          out.rest += buf.toString('latin1');
          buf = undefined;
        }
      }
    }
  } catch (err) {
    if (!(err instanceof H1RequestError)) throw err;
    out.error = err;
  }
  return out;
}
