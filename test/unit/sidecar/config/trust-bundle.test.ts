// SDS `ROOTCA` → the trust bundle the sidecar applies: the Secret exactly as the control plane
// encodes it (through the protobuf codec), roots kept in order; anything but CA certificates
// refused by field path; and, fuzzed, any input gives roots or problems, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { decodeResource, encodeResource } from '../../../../src/xds/codec.js';
import { TypeUrl } from '../../../../src/xds/types.js';
import { formatProblem, ProblemSink, type ConfigProblem } from '../../../../src/sidecar/config/problems.js';
import { MAX_BUNDLE_ROOTS, translateTrustBundle } from '../../../../src/sidecar/config/trust-bundle.js';
import { makeTestCa } from '../../ca/ca-fixtures.js';

const [rootA, rootB, intermediate] = await (async () => {
  const a = await makeTestCa({ name: 'Root A' });
  const b = await makeTestCa({ name: 'Root B' });
  return [a, b, await makeTestCa({ name: 'Leafish', issuer: a, ca: false })];
})();

/** The Secret as the control plane builds it, after a trip through the wire encoding. */
function wire(secret: object): Record<string, unknown> {
  return decodeResource(TypeUrl.Secret, encodeResource(TypeUrl.Secret, secret));
}

function rootca(pem: string, as: 'inline_bytes' | 'inline_string' = 'inline_bytes'): object {
  const data = as === 'inline_bytes' ? Buffer.from(pem) : pem;
  return { name: 'ROOTCA', validation_context: { trusted_ca: { [as]: data } } };
}

function run(secret: unknown): { pem?: string; problems: string[] } {
  const problems: ConfigProblem[] = [];
  const pem = translateTrustBundle(secret, new ProblemSink('Secret', 'ROOTCA', problems));
  return { ...(pem === undefined ? {} : { pem }), problems: problems.map(formatProblem) };
}

const fp = (pem: string): string[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p).fingerprint256,
  );

test('the bundle the control plane sends: its roots, in its order, as bytes or as text', () => {
  for (const as of ['inline_bytes', 'inline_string'] as const) {
    const r = run(wire(rootca(rootB.certificatePem + rootA.certificatePem, as)));
    assert.deepEqual(r.problems, []);
    assert.deepEqual(fp(r.pem!), fp(rootB.certificatePem + rootA.certificatePem));
  }
  // Text around the blocks (as openssl writes it) is not a problem.
  const r = run(wire(rootca(`subject=Root A\n${rootA.certificatePem}\n`)));
  assert.deepEqual(fp(r.pem!), fp(rootA.certificatePem));
});

test('anything but CA certificates is refused, each problem with its field', () => {
  const cases: Array<[unknown, string]> = [
    [{ name: 'ROOTCA' }, 'Secret "ROOTCA": validation_context is required'],
    [
      { name: 'ROOTCA', validation_context: { trusted_ca: { filename: '/etc/ca.pem' } } },
      'Secret "ROOTCA": validation_context.trusted_ca.filename is not supported by the Weft sidecar',
    ],
    [
      { name: 'ROOTCA', tls_certificate: {}, validation_context: { trusted_ca: { inline_string: 'x' } } },
      'Secret "ROOTCA": tls_certificate is not supported by the Weft sidecar',
    ],
    [
      { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: 'x', inline_bytes: 'eA==' } } },
      'Secret "ROOTCA": validation_context.trusted_ca: only one of inline_bytes, inline_string may be set (found inline_bytes, inline_string)',
    ],
    [
      rootca('no PEM here', 'inline_string'),
      'Secret "ROOTCA": validation_context.trusted_ca.inline_string: holds no certificate',
    ],
    [
      rootca(rootA.certificatePem + rootA.privateKeyPem, 'inline_string'),
      'Secret "ROOTCA": validation_context.trusted_ca.inline_string[1] is a PRIVATE KEY, not a CERTIFICATE: a trust bundle holds only CA certificates',
    ],
    [
      rootca(intermediate.certificatePem, 'inline_string'),
      'Secret "ROOTCA": validation_context.trusted_ca.inline_string[0] is not a CA certificate (subject O=Test PKI, CN=Leafish)',
    ],
    [
      rootca('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'inline_string'),
      'Secret "ROOTCA": validation_context.trusted_ca.inline_string[0] is not a readable X.509 certificate',
    ],
    [
      rootca(rootA.certificatePem.repeat(MAX_BUNDLE_ROOTS + 1), 'inline_string'),
      `Secret "ROOTCA": validation_context.trusted_ca.inline_string: holds ${MAX_BUNDLE_ROOTS + 1} roots, more than the ${MAX_BUNDLE_ROOTS} a trust bundle may`,
    ],
  ];
  for (const [secret, problem] of cases) {
    const r = run(secret);
    assert.equal(r.pem, undefined, problem);
    assert.ok(
      r.problems.some((p) => p.startsWith(problem)),
      `expected "${problem}", got ${JSON.stringify(r.problems)}`,
    );
  }
});

test('fuzz: any text, any bytes, any object gives CA roots or problems, never an exception', () => {
  const seeds = [rootA.certificatePem, rootA.privateKeyPem, intermediate.certificatePem, ''];
  const text = fc.oneof(
    fc.string(),
    fc.constantFrom(...seeds),
    fc.tuple(fc.constantFrom(...seeds), fc.string(), fc.constantFrom(...seeds)).map((p) => p.join('')),
    // A certificate with bytes flipped inside its base64 body.
    fc
      .tuple(fc.nat(rootA.certificatePem.length - 60), fc.string({ minLength: 1, maxLength: 4 }))
      .map(([i, s]) => rootA.certificatePem.slice(0, 30 + i) + s + rootA.certificatePem.slice(34 + i)),
  );
  const secret = fc.oneof(
    text.map((t) => rootca(t, 'inline_string')),
    fc.uint8Array({ maxLength: 2048 }).map((b) => ({
      name: 'ROOTCA',
      validation_context: { trusted_ca: { inline_bytes: Buffer.from(b).toString('base64') } },
    })),
    fc.anything(),
  );
  fc.assert(
    fc.property(secret, (s) => {
      const r = run(s);
      if (r.pem === undefined) return r.problems.length > 0;
      return r.problems.length === 0 && fp(r.pem).length > 0 && fp(r.pem).every(Boolean);
    }),
    { numRuns: 500 },
  );
});
