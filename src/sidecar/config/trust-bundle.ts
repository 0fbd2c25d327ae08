// SDS `ROOTCA` → the trust bundle: the Secret the control plane pushes over the ADS stream when
// its CA's roots change (a root rotation prepared, activated, finished). The stream is mutual
// TLS to the control plane's own SPIFFE ID, so what it says about trust is as good as an SVID
// answer; still, only a bundle of CA certificates is taken: `validation_context.trusted_ca`
// as inline bytes or text, holding nothing but CERTIFICATE blocks of CAs, within bounds. The
// result is the same roots re-encoded, in the order given (the root the CA signs under first).
import { X509Certificate } from 'node:crypto';
import { readPemBlocks } from '../../ca/pem.js';
import { at, type ProblemSink } from './problems.js';
import { checkMessage, message, str, type MessageSpec } from './subset.js';

const DATA_SOURCE: MessageSpec = {
  fields: { inline_bytes: str, inline_string: str },
  oneOf: [{ fields: ['inline_bytes', 'inline_string'], required: true }],
};

export const SECRET: MessageSpec = {
  fields: {
    name: str,
    validation_context: message({ fields: { trusted_ca: message(DATA_SOURCE) }, required: ['trusted_ca'] }),
  },
  required: ['name', 'validation_context'],
};

/** A bundle holds a few roots (two during a rotation); these bound what one push may cost. */
export const MAX_BUNDLE_BYTES = 256 * 1024;
export const MAX_BUNDLE_ROOTS = 32;

/**
 * The PEM roots of a `ROOTCA` Secret as `decodeResource` returns it (bytes as base64), or
 * undefined with every problem reported to `sink`.
 */
export function translateTrustBundle(secret: unknown, sink: ProblemSink): string | undefined {
  if (!checkMessage(SECRET, secret, '', sink)) return undefined;
  const source = (secret as { validation_context: { trusted_ca: Record<string, string | undefined> } })
    .validation_context.trusted_ca;
  const path = at(
    at('validation_context', 'trusted_ca'),
    source.inline_bytes !== undefined ? 'inline_bytes' : 'inline_string',
  );
  const text =
    source.inline_bytes !== undefined
      ? Buffer.from(source.inline_bytes, 'base64').toString('utf8')
      : (source.inline_string ?? '');
  if (Buffer.byteLength(text) > MAX_BUNDLE_BYTES) {
    sink.add(
      path,
      `holds ${Buffer.byteLength(text)} bytes, more than the ${MAX_BUNDLE_BYTES} a trust bundle may`,
    );
    return undefined;
  }
  const before = sink.count;
  const { blocks, problems } = readPemBlocks(text);
  for (const p of problems) sink.add(path, p);
  const roots: string[] = [];
  blocks.forEach((block, i) => {
    const where = at(path, i);
    if (block.label !== 'CERTIFICATE') {
      sink.add(where, `is a ${block.label}, not a CERTIFICATE: a trust bundle holds only CA certificates`);
      return;
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block.der);
    } catch (e) {
      sink.add(where, `is not a readable X.509 certificate (${(e as Error).message})`);
      return;
    }
    if (!cert.ca) sink.add(where, `is not a CA certificate (subject ${cert.subject.replace(/\n/g, ', ')})`);
    else roots.push(cert.toString());
  });
  if (sink.count === before && roots.length === 0) sink.add(path, 'holds no certificate');
  if (roots.length > MAX_BUNDLE_ROOTS)
    sink.add(path, `holds ${roots.length} roots, more than the ${MAX_BUNDLE_ROOTS} a trust bundle may`);
  return sink.count === before ? roots.join('') : undefined;
}
