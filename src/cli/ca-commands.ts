// `weft ca status|rotate|finish`: the control plane's certificate authority and its root
// rotation, which goes trust first, signing second: the new root is prepared (trusted by every
// proxy and the control plane, not signing), then active (it signs; the old root is still
// trusted for the overlap), then alone. Each command prints when the next step happens. A
// bring-your-own CA's key is read from a file and sent only over https:// or to a loopback
// address: the control plane refuses it otherwise, but by then it would have crossed the network.

import { readFileSync } from 'node:fs';
import { CliError, request } from './client.js';
import { parseTtl } from './token-commands.js';

interface Authority {
  id: string;
  source: string;
  subject: string;
  notAfter: string;
  roots: string[];
}

interface CaStatusBody {
  trustDomain: string;
  phase: 'stable' | 'prepared' | 'overlap';
  active: Authority;
  prepared?: Authority & { activateAt: string; retiringTrustedUntil: string };
  retiring?: { id: string; roots: string[]; trustedUntil: string; retiredAt?: string };
  nextChangeAt?: string;
  svidTtlMs: number;
  trustBundle: {
    roots: string[];
    connected: number;
    subscribed: number;
    current: number;
    waiting: string[];
  };
}

export async function runCaStatus(server: string, opts: { output: string }): Promise<void> {
  const status = await request<CaStatusBody>(server, 'GET', '/api/v1/ca');
  if (opts.output === 'json') return void console.log(JSON.stringify(status, null, 2));
  printStatus(status);
}

export interface CaRotateFlags {
  prepare?: string;
  overlap?: string;
  caCert?: string;
  caKey?: string;
  caBundle?: string;
  output: string;
}

export async function runCaRotate(server: string, opts: CaRotateFlags): Promise<void> {
  const body: Record<string, unknown> = {};
  if (opts.prepare !== undefined) body.prepareSeconds = parseTtl(opts.prepare, '--prepare');
  if (opts.overlap !== undefined) body.overlapSeconds = parseTtl(opts.overlap, '--overlap');
  if ((opts.caCert === undefined) !== (opts.caKey === undefined))
    throw new CliError('--ca-cert and --ca-key go together (--ca-bundle is optional, with them)');
  if (opts.caBundle !== undefined && opts.caCert === undefined)
    throw new CliError('--ca-bundle needs --ca-cert and --ca-key');
  if (opts.caCert !== undefined && opts.caKey !== undefined) {
    refuseExposedKey(server);
    body.caCert = readPem(opts.caCert, '--ca-cert');
    body.caKey = readPem(opts.caKey, '--ca-key');
    if (opts.caBundle !== undefined) body.caBundle = readPem(opts.caBundle, '--ca-bundle');
  }
  const status = await request<CaStatusBody>(server, 'POST', '/api/v1/ca/rotate', body);
  if (opts.output === 'json') return void console.log(JSON.stringify(status, null, 2));
  const next = status.prepared;
  if (!next) {
    // Prepared for no time (--prepare 0s): the new root signs already.
    console.log(`CA rotation started: CA ${status.active.id} signs now (no preparation).`);
    if (status.retiring)
      console.log(`  ${when(status.retiring.trustedUntil)}   the old root leaves the trust bundle`);
    return;
  }
  console.log(`CA rotation started: CA ${next.id} (${next.source}) is prepared.`);
  const rows = [
    [
      'now',
      'its root joins the trust bundle: pushed to every proxy (SDS ROOTCA) and sent with every SVID; the current root still signs',
    ],
    [when(next.activateAt), "it signs every SVID, the control plane's own too; both roots stay trusted"],
    [
      when(next.retiringTrustedUntil),
      'the old root leaves the trust bundle (`weft ca finish` ends this earlier)',
    ],
  ];
  printRows(rows.map(([a, b]) => [`  ${a}`, b!]));
  console.log(
    `Join tokens made before ${next.activateAt} are pinned to the old root, which stops vouching for the ` +
      'control plane then: make new ones after it.',
  );
}

export async function runCaFinish(server: string, opts: { output: string }): Promise<void> {
  const res = await request<CaStatusBody & { finished: boolean }>(server, 'POST', '/api/v1/ca/finish');
  if (opts.output === 'json') return void console.log(JSON.stringify(res, null, 2));
  if (!res.finished) {
    console.log(`No rotation overlap to end: the trust bundle holds only CA ${res.active.id}'s roots.`);
    return;
  }
  console.log(
    `Rotation finished: only CA ${res.active.id}'s roots are trusted now, pushed to every proxy; ` +
      'SVIDs signed by the old root no longer verify.',
  );
}

function printStatus(s: CaStatusBody): void {
  const rows: string[][] = [['trust domain', s.trustDomain]];
  const phase = {
    stable: 'stable: one root, trusted and signing',
    prepared: `prepared: the new root is trusted, the current one signs until ${s.prepared?.activateAt ?? '?'}`,
    overlap: `overlap: the new root signs, the old one is trusted until ${s.retiring?.trustedUntil ?? '?'}`,
  }[s.phase];
  rows.push(['phase', phase]);
  rows.push(['active', authority(s.active)]);
  if (s.prepared)
    rows.push([
      'prepared',
      `${authority(s.prepared)}; signs from ${s.prepared.activateAt}, the current root then stays trusted until ${s.prepared.retiringTrustedUntil}`,
    ]);
  if (s.retiring) {
    const signedUntil = s.retiring.retiredAt;
    const expire =
      signedUntil === undefined
        ? ''
        : `; it signed until ${signedUntil}, so its SVIDs expire by ${new Date(Date.parse(signedUntil) + s.svidTtlMs).toISOString()}`;
    rows.push(['retiring', `${s.retiring.id}, trusted until ${s.retiring.trustedUntil}${expire}`]);
  }
  if (s.nextChangeAt) rows.push(['next change', when(s.nextChangeAt)]);
  const b = s.trustBundle;
  rows.push([
    'trust bundle',
    `${b.roots.length} root${b.roots.length === 1 ? '' : 's'} (${b.roots.join(', ')})`,
  ]);
  rows.push([
    'proxies',
    `${b.current} of ${b.subscribed} subscribed to the bundle have ACKed it (${b.connected} connected to this control plane)` +
      (b.waiting.length > 0 ? `; waiting for ${b.waiting.join(', ')}` : ''),
  ]);
  printRows(rows);
}

function authority(a: Authority): string {
  return `${a.id} (${a.source}) ${a.subject.replace(/\n/g, ', ')}, valid until ${a.notAfter}`;
}

/** `2026-11-26T06:00:00.000Z (in 30s)`. */
function when(iso: string): string {
  const ms = Date.parse(iso) - Date.now();
  if (ms <= 0) return iso;
  let s = Math.round(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [d && `${d}d`, h && `${h}h`, m && `${m}m`, s && `${s}s`].filter(Boolean).slice(0, 2);
  return `${iso} (in ${parts.join('') || '0s'})`;
}

function printRows(rows: string[][]): void {
  const width = Math.max(...rows.map((r) => r[0]!.length));
  for (const [k, v] of rows) console.log(`${k!.padEnd(width)}   ${v}`);
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${flag} ${path}: ${(e as Error).message}`);
  }
}

/** A CA key goes only over TLS or to this host: anyone on the path could otherwise read it. */
function refuseExposedKey(server: string): void {
  const url = new URL(server);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (url.protocol === 'https:' || loopback) return;
  throw new CliError(
    `not sending a CA private key to ${server} over plain HTTP: anyone on the network path could read it. ` +
      'Run it on the control plane host, against its API on a loopback address, or through an https:// ' +
      '--server (a TLS terminator on that host, in front of the API)',
  );
}
