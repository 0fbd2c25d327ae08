// PEM armour (RFC 7468) for the CA: strict reading of untrusted text, canonical writing.
// Strict means one labelled block, standard base64 only (no headers, no stray characters), so
// that what was checked is exactly what is used.

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)\r?\n?-----END \1-----/g;

export interface PemBlock {
  label: string;
  der: Buffer;
}

/**
 * Every PEM block in `text`, in order. Text around blocks is ignored (RFC 7468 allows
 * explanatory text); a block whose body is not valid base64 yields an error message instead.
 */
export function readPemBlocks(text: string): { blocks: PemBlock[]; problems: string[] } {
  const blocks: PemBlock[] = [];
  const problems: string[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1] ?? '';
    const body = (m[2] ?? '').replace(/\r?\n/g, '');
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(body) || body === '') {
      problems.push(`the ${label} block's body is not valid base64`);
      continue;
    }
    blocks.push({ label, der: Buffer.from(body, 'base64') });
  }
  return { blocks, problems };
}

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Whether the text contains a PEM armour line at all (to tell "bad PEM" from "not PEM"). */
export function looksLikePem(text: string): boolean {
  return text.includes('-----BEGIN ');
}
