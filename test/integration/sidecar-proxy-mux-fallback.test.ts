// Integration: the upstream pool's mTLS connections to a peer that does not speak weft-mux/1 (an
// older sidecar, another proxy). The requests opened while the pool found out, and those after,
// all reach it over plain HTTP/1.1 connections, real mutual TLS with SVIDs from Weft's CA.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { silentLogger } from '../../src/log.js';
import { resolveLimits } from '../../src/sidecar/proxy/limits.js';
import { TlsCredentials } from '../../src/sidecar/proxy/mtls.js';
import { UpstreamPool } from '../../src/sidecar/proxy/upstream-pool.js';
import type { H1Response } from '../../src/sidecar/proxy/upstream-h1.js';
import { memoryCa } from '../helpers/identity.js';

test('a peer without weft-mux/1 gets every request over plain HTTP/1.1, none lost', async () => {
  const { bundle, issue } = await memoryCa();
  const server = await issue('server');
  const client = await issue('client');
  const alpn: Array<string | false | null> = [];
  const peer = https.createServer(
    {
      key: server.key,
      cert: server.cert,
      ca: bundle,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      alpn.push((req.socket as TLSSocket).alpnProtocol);
      res.end(`hello ${req.url}`);
    },
  );
  peer.listen(0, '127.0.0.1');
  await once(peer, 'listening');
  const port = (peer.address() as AddressInfo).port;
  const credentials = new TlsCredentials(silentLogger());
  credentials.set({
    spiffeId: client.id,
    privateKeyPem: client.key,
    chainPem: client.cert,
    trustBundlePem: bundle,
  });
  const pool = new UpstreamPool(resolveLimits({}), silentLogger(), credentials);
  const tls = { sni: 'server', expectedSpiffeIds: [server.id] };
  const get = (path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      pool.h1('127.0.0.1', port, tls).request(
        {
          head: `GET ${path} HTTP/1.1\r\nhost: server\r\n\r\n`,
          hasBody: false,
          chunked: false,
          isHead: false,
          flushHead: false,
          connectTimeoutMs: 5_000,
          replayable: true,
        },
        {
          onContinue: () => {},
          onResponse: (res: H1Response) => resolve(`${res.status} ${res.whole?.toString() ?? ''}`),
          onFailure: (_connected, message) => reject(new Error(message)),
        },
      );
    });
  try {
    // Three at once: they were all opened as channels before the peer's answer came.
    assert.deepEqual(await Promise.all([get('/a'), get('/b'), get('/c')]), [
      '200 hello /a',
      '200 hello /b',
      '200 hello /c',
    ]);
    assert.equal(await get('/d'), '200 hello /d');
    assert.ok(alpn.length === 4 && alpn.every((p) => p === 'http/1.1'), JSON.stringify(alpn));
  } finally {
    pool.close();
    peer.closeAllConnections();
    peer.close();
    await once(peer, 'close');
  }
});
