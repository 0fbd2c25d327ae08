// Who a workload API request comes from, when its connection carries a client certificate: the
// certificate was verified at the handshake, but a kept-open connection can outlive it, so an
// expired one is refused at each request (a 401 naming the expiry), not taken as the workload;
// one the handshake did not verify is refused too (a 401 with the reason), not taken as anonymous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AdminToken } from '../../../src/control-plane/admin-token.js';
import { principalOf } from '../../../src/control-plane/api-auth.js';
import { WeftError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { makeTestCa } from '../ca/ca-fixtures.js';

const ID = 'spiffe://weft.local/ns/default/sa/web';
const { admin } = await AdminToken.ensure(new MemoryStore(), undefined, silentLogger());

/**
 * A request as node:https hands it over on a connection with a client certificate, verified at
 * the handshake unless `authorizationError` says why not.
 */
async function requestWithCertificate(notAfter: Date, authorizationError?: string): Promise<IncomingMessage> {
  const cert = await makeTestCa({ name: 'web', ca: false, spiffeId: ID, notAfter });
  const peer = new X509Certificate(cert.certificatePem);
  return {
    headers: {},
    socket: {
      encrypted: true,
      authorized: authorizationError === undefined,
      authorizationError,
      getPeerX509Certificate: () => peer,
    },
  } as unknown as IncomingMessage;
}

test('a verified client certificate still valid: the workload it names', async () => {
  const req = await requestWithCertificate(new Date(Date.now() + 3600_000));
  assert.deepEqual(principalOf(req, admin, 'weft.local'), {
    kind: 'workload',
    spiffeId: ID,
    namespace: 'default',
    serviceAccount: 'web',
  });
});

test('a client certificate that expired since the handshake: 401, saying when it expired', async () => {
  const req = await requestWithCertificate(new Date(Date.now() - 60_000));
  assert.throws(
    () => principalOf(req, admin, 'weft.local'),
    (e: unknown) =>
      e instanceof WeftError &&
      e.code === 'WEFT_E_UNAUTHENTICATED' &&
      /the client certificate expired at .*; connect again with a current SVID/.test(e.message),
  );
});

test('a client certificate the handshake did not verify: 401 with the reason, not anonymous', async () => {
  const req = await requestWithCertificate(new Date(Date.now() - 60_000), 'CERT_HAS_EXPIRED');
  assert.throws(
    () => principalOf(req, admin, 'weft.local'),
    (e: unknown) =>
      e instanceof WeftError &&
      e.code === 'WEFT_E_UNAUTHENTICATED' &&
      /the client certificate was not accepted \(CERT_HAS_EXPIRED\)/.test(e.message),
  );
});

test('TLS without a client certificate: anonymous', () => {
  const req = {
    headers: {},
    socket: { encrypted: true, authorized: false, getPeerX509Certificate: () => undefined },
  } as unknown as IncomingMessage;
  assert.deepEqual(principalOf(req, admin, 'weft.local'), { kind: 'anonymous' });
});
