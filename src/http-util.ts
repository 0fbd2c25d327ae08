// Small helpers for Weft's HTTP endpoints (the control plane's REST API, the sidecar's admin
// server): bounded body reading, JSON and text answers, and any error as a stable JSON body.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { WeftError, isWeftError } from './errors.js';

/**
 * The connection as a TLS socket when it is one (an https server's), else undefined: the one
 * place where a request's or response's socket is taken for a TLSSocket. Gone sockets (a
 * destroyed connection's) are undefined too.
 */
export function tlsSocketOf(socket: object | null | undefined): TLSSocket | undefined {
  return (socket as Partial<TLSSocket> | null | undefined)?.encrypted === true
    ? (socket as TLSSocket)
    : undefined;
}

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

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
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
