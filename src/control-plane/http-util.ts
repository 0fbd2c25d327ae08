// Small helpers for the REST API: bounded body reading, JSON answers, and turning any error into
// a stable JSON error body (`{code, message, errors}`) with the status its code implies.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { WeftError, isWeftError } from '../errors.js';

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      throw new WeftError(
        'WEFT_E_TOO_LARGE',
        `request body is larger than ${limit} bytes; split the file into several applies`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (isWeftError(err)) {
    sendJson(res, err.status, err.toJSON());
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  sendJson(res, 500, { code: 'WEFT_E_INTERNAL', message: `internal error: ${message}` });
}
