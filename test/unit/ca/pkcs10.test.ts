// The sidecar's own PKCS#10 builder (node:crypto only) against the CA's parser and openssl.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../../src/ca/index.js';
import { parseCsr } from '../../../src/ca/csr.js';
import { newWorkloadKey, workloadCsr } from '../../../src/ca/pkcs10.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { tempDir } from '../../helpers/weft-process.js';

const ID = 'spiffe://weft.local/ns/default/sa/fe';

test('the CA parses the request: one URI SAN, a P-256 key, a valid self-signature', async () => {
  const csr = workloadCsr(newWorkloadKey(), ID);
  const parsed = await parseCsr(csr);
  assert.deepEqual(parsed.uris, [ID]);
  assert.deepEqual(parsed.otherNames, []);
  assert.equal(parsed.keyDescription, 'EC P-256');
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: 'weft.local' });
  const svid = await ca.sign({ csr, identity: { namespace: 'default', serviceAccount: 'fe' } });
  assert.equal(svid.spiffeId, ID);
  // Another identity in the request is refused by the CA, as for any CSR.
  await assert.rejects(
    ca.sign({
      csr: workloadCsr(newWorkloadKey(), 'spiffe://weft.local/ns/default/sa/be'),
      identity: { namespace: 'default', serviceAccount: 'fe' },
    }),
    (e: Error & { code?: string }) => e.code === 'WEFT_E_CSR_WRONG_IDENTITY',
  );
});

test('openssl req -verify accepts it and shows the SPIFFE URI', () => {
  const file = join(tempDir(), 'req.pem');
  writeFileSync(file, workloadCsr(newWorkloadKey(), ID));
  const out = execFileSync('openssl', ['req', '-in', file, '-noout', '-verify', '-text'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.match(out, new RegExp(`URI:${ID.replace(/[/.]/g, '\\$&')}`));
  assert.match(out, /Subject Alternative Name: critical/);
  assert.match(out, /ASN1 OID: prime256v1/);
});

test('a long SPIFFE ID (over 127 bytes) still encodes with long-form lengths', async () => {
  const long = `spiffe://weft.local/ns/default/sa/${'a'.repeat(200)}`;
  const csr = workloadCsr(newWorkloadKey(), long);
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: 'weft.local' });
  const svid = await ca.sign({ csr, identity: { namespace: 'default', serviceAccount: 'a'.repeat(200) } });
  assert.equal(svid.spiffeId, long);
});
