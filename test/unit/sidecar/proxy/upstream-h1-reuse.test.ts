// Regression: a response read under backpressure left its socket paused; the connection went
// back to the pool paused, and the next response on it was never read (a 64 MiB download after
// an upload hung about half the time through two proxies). A pooled connection must flow.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { H1Pool, type H1Response } from '../../../../src/sidecar/proxy/upstream-h1.js';

const BIG = 4 * 1024 * 1024;

test('a connection released after a response read with backpressure answers the next request', async () => {
  // First response: 4 MiB (far beyond any stream buffer, so the reader pauses the socket);
  // second response: a few bytes, on the same connection.
  let n = 0;
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        if (n++ === 0) {
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
          s.write(Buffer.alloc(BIG, 7));
        } else {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new H1Pool('127.0.0.1', (server.address() as net.AddressInfo).port, {
    maxSockets: 1,
    maxIdle: 1,
    idleTimeoutMs: 10_000,
  });
  const get = (slow: boolean): Promise<number> =>
    new Promise((resolve, reject) => {
      pool.request(
        {
          head: 'GET / HTTP/1.1\r\nhost: x\r\n\r\n',
          hasBody: false,
          chunked: false,
          isHead: false,
          flushHead: false,
          connectTimeoutMs: 1000,
          replayable: false,
        },
        {
          onContinue: () => undefined,
          onResponse: (res: H1Response) => {
            if (res.whole) return resolve(res.whole.length);
            const body = res.body as Readable;
            let got = 0;
            // A slow consumer: 4 KiB per tick, so the stream stays full and its last chunk
            // arrives with the socket paused.
            const pump = (): void => {
              const c = body.read(slow ? 4096 : undefined) as Buffer | null;
              if (c) got += c.length;
              else if (body.readableEnded || body.readableLength === 0) {
                // Nothing buffered: wait for more (or for the end).
                body.once('readable', pump);
                return;
              }
              setImmediate(pump);
            };
            body.on('end', () => resolve(got));
            body.once('readable', pump);
          },
          onFailure: (_connected, message) => reject(new Error(message)),
        },
      );
    });
  try {
    assert.equal(await get(true), BIG);
    const second = await Promise.race([
      get(false),
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error('second response never read')), 3000).unref(),
      ),
    ]);
    assert.equal(second, 2);
  } finally {
    pool.destroy();
    server.close();
  }
});
