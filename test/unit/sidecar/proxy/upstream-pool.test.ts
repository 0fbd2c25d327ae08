// Upstream pools are per endpoint and per transport: an address that turns from a plaintext
// Workload into a sidecar (or back) must not reuse the other kind's connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../../src/log.js';
import { resolveLimits } from '../../../../src/sidecar/proxy/limits.js';
import { TlsCredentials } from '../../../../src/sidecar/proxy/mtls.js';
import { UpstreamPool, poolKey } from '../../../../src/sidecar/proxy/upstream-pool.js';

const TLS = {
  sni: 'outbound_.80_._.a.default.svc.cluster.local',
  expectedSpiffeIds: ['spiffe://t/ns/default/sa/a'],
};

test('plaintext and mTLS pools of one address are kept apart, and both stay live', () => {
  const pool = new UpstreamPool(resolveLimits({}), silentLogger(), new TlsCredentials(silentLogger()));
  try {
    const plain = pool.h1('127.0.0.1', 8080);
    const mtls = pool.h1('127.0.0.1', 8080, TLS);
    assert.notEqual(plain, mtls);
    assert.equal(pool.h1('127.0.0.1', 8080, TLS), mtls);
    assert.notEqual(mtls.connectTo, undefined);
    assert.equal(plain.connectTo, undefined);
    assert.notEqual(poolKey('127.0.0.1', 8080, TLS), poolKey('127.0.0.1', 8080, undefined));
    // retain() with the mTLS key only retires the plaintext pool, not the mTLS one.
    pool.retain(new Set([poolKey('127.0.0.1', 8080, TLS)]));
    assert.equal(pool.h1('127.0.0.1', 8080, TLS), mtls);
    assert.notEqual(pool.h1('127.0.0.1', 8080), plain);
  } finally {
    pool.close();
  }
});
