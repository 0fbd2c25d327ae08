// Which HTTP version a new plaintext connection speaks: HTTP/2 with prior knowledge (h2c)
// starts with a fixed 24-byte preface (RFC 9113 §3.4); anything else is taken as HTTP/1.1.
// Decided on the fewest bytes possible — one byte that differs from the preface settles it.

import type { Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type Codec = 'http1' | 'http2';

/** `undefined`: the bytes so far are a prefix of the preface, read more. */
export function classifyPreface(bytes: Buffer): Codec | undefined {
  const n = Math.min(bytes.length, H2_PREFACE.length);
  if (bytes.subarray(0, n).equals(H2_PREFACE.subarray(0, n)))
    return n === H2_PREFACE.length ? 'http2' : undefined;
  return 'http1';
}

/**
 * Reads until the codec is known, then puts the bytes back (unshift) so the chosen server parses
 * the connection from its first byte. Rejects when the client sends nothing in time or leaves.
 */
export function detectCodec(socket: Socket, timeoutMs: number): Promise<Codec> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const codec = classifyPreface(all);
      if (codec === undefined) return;
      cleanup();
      socket.pause();
      socket.unshift(all);
      resolve(codec);
    };
    const onGone = (): void => {
      cleanup();
      reject(new Error('connection closed before the first request'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no request bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    socket.once('error', onGone);
  });
}
