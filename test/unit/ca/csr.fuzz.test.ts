// Fuzz test of the path untrusted CSRs take: parseCsr() and CertificateAuthority.sign(). Whatever
// a workload sends, the answer is an SVID for exactly the identity the caller is entitled to, or
// a WeftError with a WEFT_E_CSR_* code: never another exception, never a hang, never a
// certificate naming anything else. The seed corpus below runs every time as a regression suite.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isWeftError } from '../../../src/errors.js';
import {
  CSR_REFUSAL_CODES,
  CertificateAuthority,
  createCsr,
  generateWorkloadKey,
  parseCsr,
  type WorkloadKey,
} from '../../../src/ca/index.js';
import { x509 } from '../../../src/ca/x509-lib.js';
import { MemoryStore } from '../../../src/store/index.js';
import { TRUST_DOMAIN, WEB, WEB_ID, makeCsr, pemToDer } from './ca-fixtures.js';

const CSR_CODES = new Set<string>(Object.values(CSR_REFUSAL_CODES));

let ca: CertificateAuthority;
let key: WorkloadKey;
let validPem: string;
let validDer: Buffer;
before(async () => {
  ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TRUST_DOMAIN });
  key = await generateWorkloadKey();
  validPem = await createCsr(key, WEB_ID);
  validDer = pemToDer(validPem);
});

/** The one property: signed for WEB_ID only, or refused with a CSR code. Returns what happened. */
async function check(input: string | Uint8Array): Promise<'signed' | 'refused'> {
  try {
    await parseCsr(input);
  } catch (e) {
    assert.ok(isWeftError(e) && CSR_CODES.has(e.code), `parseCsr threw ${String(e)}`);
  }
  let svid;
  try {
    svid = await ca.sign({ csr: input, identity: WEB });
  } catch (e) {
    assert.ok(isWeftError(e) && CSR_CODES.has(e.code), `sign threw ${String(e)}`);
    return 'refused';
  }
  const cert = new x509.X509Certificate(svid.certificatePem);
  assert.deepEqual(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [
    { type: 'url', value: WEB_ID },
  ]);
  assert.equal(cert.subject, '');
  return 'signed';
}

/** `depth` nested empty SEQUENCEs with correct definite lengths (a parser-recursion bomb). */
function nestedSequences(depth: number): Buffer {
  let inner = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) {
    const len = inner.length;
    const header =
      len < 0x80
        ? Buffer.from([0x30, len])
        : len < 0x100
          ? Buffer.from([0x30, 0x81, len])
          : Buffer.from([0x30, 0x82, len >> 8, len & 0xff]);
    inner = Buffer.concat([header, inner]);
  }
  return inner;
}

function mutate(der: Buffer, edits: { at: number; byte: number }[], cut: number | undefined): Buffer {
  const out = Buffer.from(der);
  for (const e of edits) out[e.at % out.length] = e.byte;
  return cut === undefined ? out : out.subarray(0, cut % (out.length + 1));
}

test('seed corpus: each known-bad shape is refused with its code, the valid one signed', async () => {
  const pemOf = (der: Buffer) =>
    `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const seeds: [string, string | Uint8Array, string | 'signed'][] = [
    ['valid PEM', validPem, 'signed'],
    ['valid DER', validDer, 'signed'],
    ['valid PEM with CRLF line ends', validPem.replace(/\n/g, '\r\n'), 'signed'],
    ['empty bytes', new Uint8Array(), 'WEFT_E_CSR_MALFORMED'],
    ['one byte', Uint8Array.from([0x30]), 'WEFT_E_CSR_MALFORMED'],
    ['indefinite outer length', Uint8Array.from([0x30, 0x80, 0, 0]), 'WEFT_E_CSR_MALFORMED'],
    ['outer length of 2^32', Uint8Array.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), 'WEFT_E_CSR_MALFORMED'],
    ['outer length past the end', Uint8Array.from([0x30, 0x82, 0x10, 0x00, 0x02]), 'WEFT_E_CSR_MALFORMED'],
    ['2000 nested SEQUENCEs', nestedSequences(2000), 'WEFT_E_CSR_MALFORMED'],
    ['nested SEQUENCEs as PEM', pemOf(nestedSequences(500)), 'WEFT_E_CSR_MALFORMED'],
    ['truncated by half', validDer.subarray(0, validDer.length >> 1), 'WEFT_E_CSR_MALFORMED'],
    ['a certificate, not a request', pemToDer((await ca.trustBundle())[0]!), 'WEFT_E_CSR_MALFORMED'],
    [
      'PEM with a bad base64 body',
      '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----',
      'WEFT_E_CSR_MALFORMED',
    ],
    ['PEM armour with no end', '-----BEGIN CERTIFICATE REQUEST-----\nMIIB', 'WEFT_E_CSR_MALFORMED'],
    ['UTF-16 text', Buffer.from(validPem, 'utf16le'), 'WEFT_E_CSR_MALFORMED'],
    [
      'signature byte flipped',
      mutate(validDer, [{ at: validDer.length - 3, byte: validDer[validDer.length - 3]! ^ 1 }], undefined),
      'WEFT_E_CSR_BAD_SIGNATURE',
    ],
    ['RSA 1024', await makeCsr([{ type: 'url', value: WEB_ID }], 'RSA-1024'), 'WEFT_E_CSR_KEY_NOT_ALLOWED'],
    [
      'another identity',
      await makeCsr([{ type: 'url', value: WEB_ID.replace('/web', '/admin') }]),
      'WEFT_E_CSR_WRONG_IDENTITY',
    ],
    ['17 KiB of zeros', new Uint8Array(17 * 1024), 'WEFT_E_CSR_TOO_LARGE'],
  ];
  for (const [name, input, expected] of seeds) {
    const issuedBefore = ca.stats().issued;
    try {
      await ca.sign({ csr: input, identity: WEB });
      assert.equal(expected, 'signed', `${name}: was signed`);
      assert.equal(ca.stats().issued, issuedBefore + 1);
    } catch (e) {
      assert.ok(isWeftError(e), `${name}: threw ${String(e)}`);
      assert.equal(e.code, expected, `${name}: ${e.message}`);
    }
    await check(input);
  }
});

test('random bytes: always refused with a CSR code', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 1200 }), async (bytes) => {
      assert.equal(await check(bytes), 'refused');
    }),
    { numRuns: 600 },
  );
});

test('random bytes behind a valid DER header: always refused with a CSR code', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (body) => {
      const der = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
      assert.equal(await check(der), 'refused');
    }),
    { numRuns: 600 },
  );
});

test('mutated valid CSRs (byte edits, truncation): a correct SVID or a CSR code', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.boolean(),
      async (edits, cut, asPem) => {
        const der = mutate(validDer, edits, cut);
        const input = asPem
          ? `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
          : der;
        const outcome = await check(input);
        if (edits.length === 0 && cut === undefined) assert.equal(outcome, 'signed');
      },
    ),
    { numRuns: 800 },
  );
});

test('mutated PEM text: a correct SVID or a CSR code', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ at: fc.nat(), text: fc.string({ maxLength: 4 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
      async (edits) => {
        let pem = validPem;
        for (const e of edits) {
          const at = e.at % (pem.length + 1);
          pem = pem.slice(0, at) + e.text + pem.slice(at + 1);
        }
        await check(pem);
      },
    ),
    { numRuns: 600 },
  );
});

test('well-formed CSRs for other identities: always WEFT_E_CSR_WRONG_IDENTITY', async () => {
  const segment = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.tuple(segment, segment).map(([ns, sa]) => `spiffe://${TRUST_DOMAIN}/ns/${ns}/sa/${sa}`),
        segment.map((td) => `spiffe://${td}/ns/default/sa/web`),
        fc.webUrl(),
      ),
      async (uri) => {
        fc.pre(uri !== WEB_ID);
        const csr = await createCsr(key, uri);
        await assert.rejects(ca.sign({ csr, identity: WEB }), (e: unknown) =>
          isWeftError(e, 'WEFT_E_CSR_WRONG_IDENTITY'),
        );
      },
    ),
    { numRuns: 100 },
  );
});
