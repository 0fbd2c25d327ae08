// Integration: the CA's certificates as the outside world sees them. The real `openssl` verifies
// SVIDs against the trust bundle (generated root, a bring-your-own intermediate made by openssl,
// both roots during a rotation, only the new one after), prints their extensions, computes the CA
// pin of join tokens as docs/identity.md tells operators to, and makes CSRs the CA must accept or
// refuse; node:tls runs mutual TLS with the SVIDs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { isWeftError } from '../../src/errors.js';
import {
  caPinOf,
  CertificateAuthority,
  createCsr,
  generateWorkloadKey,
  type IssuedSvid,
  type WorkloadIdentity,
} from '../../src/ca/index.js';
import { MemoryStore } from '../../src/store/index.js';

const TD = 'example.org';
const WEB = { namespace: 'default', serviceAccount: 'web' };
const WEB_ID = `spiffe://${TD}/ns/default/sa/web`;
const DAY = 24 * 3600_000;

let dir: string;
before(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'weft-ca-openssl-'));
});
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** Runs openssl in the temp dir; resolves with its exit code and output, never rejects on a non-zero exit. */
function openssl(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? Number(err.code) : 0, out: `${stdout}${stderr}` });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await openssl(...args);
  assert.equal(r.code, 0, `openssl ${args.join(' ')}:\n${r.out}`);
  return r.out;
}

/** A command line's words (none of ours contain spaces). */
const words = (line: string): string[] => line.split(' ');

async function write(name: string, text: string): Promise<string> {
  await fsp.writeFile(join(dir, name), text);
  return name;
}

async function issue(
  ca: CertificateAuthority,
  identity: WorkloadIdentity = WEB,
): Promise<IssuedSvid & { key: string }> {
  const key = await generateWorkloadKey();
  const svid = await ca.sign({ csr: await createCsr(key, ca.spiffeIdFor(identity)), identity });
  return { ...svid, key: key.privateKeyPem };
}

function manualClock(): { now: () => number; advance(ms: number): void } {
  let t = Date.now();
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('openssl verifies an SVID from the generated root and shows the X.509-SVID extensions', async () => {
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD });
  const svid = await issue(ca);
  await write('gen-bundle.pem', svid.trustBundlePem);
  await write('gen-svid.pem', svid.chainPem);
  assert.match(await ok('verify', '-CAfile', 'gen-bundle.pem', 'gen-svid.pem'), /gen-svid.pem: OK/);
  // Good for both ends of mutual TLS.
  await ok('verify', '-purpose', 'sslserver', '-CAfile', 'gen-bundle.pem', 'gen-svid.pem');
  await ok('verify', '-purpose', 'sslclient', '-CAfile', 'gen-bundle.pem', 'gen-svid.pem');

  const text = await ok('x509', '-text', '-noout', '-in', 'gen-svid.pem');
  assert.match(text, /Subject: *\n/);
  assert.match(
    text,
    /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web\s/,
  );
  assert.equal(text.match(/URI:/g)?.length, 1);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\s/);
  assert.match(
    text,
    /X509v3 Extended Key Usage: \s*TLS Web Server Authentication, TLS Web Client Authentication/,
  );
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);

  const root = await ok('x509', '-text', '-noout', '-in', 'gen-bundle.pem');
  assert.match(root, /CA:TRUE/);
  assert.match(root, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(root, /URI:spiffe:\/\/example\.org\s/);
  assert.match(root, /NIST CURVE: P-256/);
});

test('bring your own intermediate (made by openssl): the chain verifies against the supplied root', async () => {
  await write(
    'byo-ext.cnf',
    [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[root]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '[intermediate]',
      'basicConstraints = critical, CA:TRUE, pathlen:0',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      `subjectAltName = URI:spiffe://${TD}`,
      '',
    ].join('\n'),
  );
  await ok(...words('genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out byo-root.key'));
  await ok(
    ...words(
      'req -x509 -new -key byo-root.key -days 30 -config byo-ext.cnf -extensions root -out byo-root.pem',
    ),
    ...['-subj', '/O=Corp/CN=Corp Root CA'],
  );
  // An RSA intermediate, so SVIDs are signed with RSA here (the generated root is EC).
  await ok(...words('genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out byo-int.key'));
  await ok(
    ...words('req -new -key byo-int.key -config byo-ext.cnf -out byo-int.csr'),
    ...['-subj', '/O=Corp/CN=Weft Mesh Intermediate'],
  );
  await ok(
    ...words('x509 -req -in byo-int.csr -CA byo-root.pem -CAkey byo-root.key -set_serial 2 -days 10'),
    ...words('-extfile byo-ext.cnf -extensions intermediate -out byo-int.pem'),
  );
  const read = (f: string) => fsp.readFile(join(dir, f), 'utf8');
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TD,
    supplied: {
      certificatePem: await read('byo-int.pem'),
      privateKeyPem: await read('byo-int.key'),
      trustAnchorsPem: await read('byo-root.pem'),
    },
  });
  const svid = await issue(ca);
  assert.equal(svid.trustBundlePem.trim(), (await read('byo-root.pem')).trim());
  const [leaf, ...rest] = svid.chainPem.match(
    /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g,
  )!;
  assert.equal(rest.length, 1);
  await write('byo-leaf.pem', leaf!);
  await write('byo-untrusted.pem', rest.join(''));
  await write('byo-bundle.pem', svid.trustBundlePem);
  assert.match(
    await ok('verify', '-CAfile', 'byo-bundle.pem', '-untrusted', 'byo-untrusted.pem', 'byo-leaf.pem'),
    /byo-leaf.pem: OK/,
  );
  // Without the intermediate, no path: the chain really goes through it.
  const alone = await openssl('verify', '-CAfile', 'byo-bundle.pem', 'byo-leaf.pem');
  assert.notEqual(alone.code, 0);
  const text = await ok('x509', '-text', '-noout', '-in', 'byo-leaf.pem');
  assert.match(text, /Issuer: O ?= ?Corp, CN ?= ?Weft Mesh Intermediate/);
  assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
  assert.match(text, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web\s/);
});

/** The pin as docs/identity.md computes it with openssl (its last step, base64url, done here). */
async function opensslPin(rootFile: string): Promise<string> {
  const base = rootFile.replace(/\.pem$/, '');
  await ok('x509', '-in', rootFile, '-noout', '-pubkey', '-out', `${base}.pub.pem`);
  await ok('pkey', '-pubin', '-in', `${base}.pub.pem`, '-outform', 'der', '-out', `${base}.spki.der`);
  await ok('dgst', '-sha256', '-binary', '-out', `${base}.spki.sha256`, `${base}.spki.der`);
  return 'sha256-' + (await fsp.readFile(join(dir, `${base}.spki.sha256`))).toString('base64url');
}

test("the CA pin is what openssl prints from the root's public key: generated EC root, openssl RSA root", async () => {
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD });
  await write('pin-gen.pem', (await ca.trustBundle())[0]!);
  assert.equal(await ca.caPin(), await opensslPin('pin-gen.pem'));
  await ok(...words('genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pin-rsa.key'));
  await ok(
    ...words(
      'req -x509 -new -key pin-rsa.key -days 2 -out pin-rsa.pem -addext basicConstraints=critical,CA:TRUE',
    ),
    ...words('-addext keyUsage=critical,keyCertSign,cRLSign -subj /CN=Pin-RSA-Root'),
  );
  const rsa = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TD,
    supplied: {
      certificatePem: await fsp.readFile(join(dir, 'pin-rsa.pem'), 'utf8'),
      privateKeyPem: await fsp.readFile(join(dir, 'pin-rsa.key'), 'utf8'),
    },
  });
  const pin = await opensslPin('pin-rsa.pem');
  assert.equal(await rsa.caPin(), pin);
  assert.equal(caPinOf(await fsp.readFile(join(dir, 'pin-rsa.pem'), 'utf8')), pin);
});

test('rotation: SVIDs of both roots verify against the two-root bundle; after the overlap only the new one', async () => {
  const clock = manualClock();
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD, now: clock.now });
  const old = await issue(ca);
  await ca.startRotation({ overlapMs: DAY, prepareMs: 0 });
  const fresh = await issue(ca);
  assert.notEqual(fresh.authorityId, old.authorityId);
  await write('rot-old.pem', old.certificatePem);
  await write('rot-new.pem', fresh.certificatePem);
  await write('rot-both.pem', (await ca.trustBundle()).join(''));
  assert.equal(fresh.trustBundlePem, (await ca.trustBundle()).join(''));
  assert.match(await ok('verify', '-CAfile', 'rot-both.pem', 'rot-old.pem'), /OK/);
  assert.match(await ok('verify', '-CAfile', 'rot-both.pem', 'rot-new.pem'), /OK/);

  clock.advance(DAY);
  const after = await ca.trustBundle();
  assert.equal(after.length, 1);
  await write('rot-after.pem', after.join(''));
  assert.match(await ok('verify', '-CAfile', 'rot-after.pem', 'rot-new.pem'), /OK/);
  const refused = await openssl('verify', '-CAfile', 'rot-after.pem', 'rot-old.pem');
  assert.notEqual(refused.code, 0);
  assert.match(refused.out, /unable to get local issuer certificate/);
});

test('CSRs made by openssl: a P-256 one is signed; Ed25519, RSA-1024 and extra names are refused', async () => {
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD });
  const P256 = '-algorithm EC -pkeyopt ec_paramgen_curve:P-256';
  const csrWith = async (name: string, keyArgs: string, san: string) => {
    await ok(...words(`genpkey ${keyArgs} -out ${name}.key`));
    await ok(
      ...words(`req -new -key ${name}.key -subj /CN=ignored -out ${name}.csr`),
      '-addext',
      `subjectAltName=${san}`,
    );
    return fsp.readFile(join(dir, `${name}.csr`), 'utf8');
  };
  const svid = await ca.sign({ csr: await csrWith('ossl-p256', P256, `URI:${WEB_ID}`), identity: WEB });
  await write('ossl-svid.pem', svid.certificatePem);
  const text = await ok(...words('x509 -text -noout -in ossl-svid.pem'));
  assert.doesNotMatch(text, /ignored/); // the CSR's subject is not copied
  // DER, as `openssl req -outform DER` writes it.
  await ok(...words('req -in ossl-p256.csr -outform DER -out ossl-p256.der'));
  await ca.sign({ csr: await fsp.readFile(join(dir, 'ossl-p256.der')), identity: WEB });

  const refusedWith = async (csr: string, code: string) =>
    assert.rejects(ca.sign({ csr, identity: WEB }), (e: unknown) => isWeftError(e) && e.code === code);
  const uri = `URI:${WEB_ID}`;
  await refusedWith(await csrWith('ossl-ed', '-algorithm ed25519', uri), 'WEFT_E_CSR_KEY_NOT_ALLOWED');
  const rsa1024 = '-algorithm RSA -pkeyopt rsa_keygen_bits:1024';
  await refusedWith(await csrWith('ossl-rsa1024', rsa1024, uri), 'WEFT_E_CSR_KEY_NOT_ALLOWED');
  await refusedWith(await csrWith('ossl-dns', P256, `${uri},DNS:web`), 'WEFT_E_CSR_WRONG_IDENTITY');
  assert.deepEqual(ca.stats().refused, {
    too_large: 0,
    malformed: 0,
    key_not_allowed: 2,
    bad_signature: 0,
    wrong_identity: 1,
  });
});

test('node:tls mutual TLS 1.3 with SVIDs: each side sees the other SPIFFE ID; a foreign CA is refused', async () => {
  const ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD });
  const foreign = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TD });
  const server = await issue(ca, { namespace: 'default', serviceAccount: 'api' });
  const client = await issue(ca);
  const stranger = await issue(foreign);
  const peerIds: string[] = [];
  const srv = tls.createServer(
    {
      key: server.key,
      cert: server.chainPem,
      ca: server.trustBundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (socket) => {
      peerIds.push(socket.getPeerCertificate().subjectaltname ?? '');
      socket.end('hello');
    },
  );
  srv.on('tlsClientError', () => {});
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  const connect = (svid: IssuedSvid & { key: string }) =>
    new Promise<{ data: string; serverId: string }>((resolve, reject) => {
      let serverId = '';
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        key: svid.key,
        cert: svid.chainPem,
        ca: svid.trustBundlePem,
        minVersion: 'TLSv1.3',
        // SPIFFE authentication checks the URI SAN, not a host name.
        checkServerIdentity: (_host, cert) => {
          serverId = cert.subjectaltname ?? '';
          return undefined;
        },
      });
      let data = '';
      socket.on('data', (d) => (data += String(d)));
      socket.on('end', () => resolve({ data, serverId }));
      socket.on('error', reject);
    });
  try {
    const good = await connect(client);
    assert.deepEqual(good, { data: 'hello', serverId: `URI:spiffe://${TD}/ns/default/sa/api` });
    assert.deepEqual(peerIds, [`URI:${WEB_ID}`]);
    // A client whose SVID comes from another CA (but which trusts this server) gets nothing.
    const refused = await connect({ ...stranger, trustBundlePem: server.trustBundlePem }).then(
      (r) => r.data,
      (e: Error) => e.message,
    );
    assert.notEqual(refused, 'hello');
    assert.equal(peerIds.length, 1);
  } finally {
    srv.close();
    await once(srv, 'close');
  }
});
