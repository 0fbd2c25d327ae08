// The CLI's client for the control plane's REST API. Every failure becomes a CliError with a
// message a person can act on: which server, what went wrong, how to fix it.

import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { FieldError } from '../errors.js';
import { spiffeServerCheck } from '../ca/spiffe-id.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:15080';

export class CliError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

let adminToken: string | undefined;

/** The admin token sent with every request: --admin-token, else WEFT_ADMIN_TOKEN. */
export function useAdminToken(flag: string | undefined): void {
  const t = flag ?? process.env.WEFT_ADMIN_TOKEN;
  adminToken = t === undefined || t.trim() === '' ? undefined : t.trim();
}

/** TLS to the control plane's API: the roots to trust, and our client certificate if any. */
interface ClientTls {
  ca: string;
  key?: string;
  cert?: string;
}
let clientTls: ClientTls | undefined;

function readFlagFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${flag} ${path}: ${(e as Error).message}`);
  }
}

/**
 * For an `https://` server (the control plane's TLS API): --certificate-authority (env WEFT_CERTIFICATE_AUTHORITY),
 * the roots its certificate must chain to, and optionally --client-certificate/--client-key (env
 * WEFT_CLIENT_CERTIFICATE/WEFT_CLIENT_KEY), an admin certificate from `weft cert request`.
 */
export function useClientTls(flags: {
  certificateAuthority?: string;
  clientCertificate?: string;
  clientKey?: string;
}): void {
  const bundle = flags.certificateAuthority ?? process.env.WEFT_CERTIFICATE_AUTHORITY;
  const cert = flags.clientCertificate ?? process.env.WEFT_CLIENT_CERTIFICATE;
  const key = flags.clientKey ?? process.env.WEFT_CLIENT_KEY;
  if ((cert === undefined) !== (key === undefined))
    throw new CliError('--client-certificate and --client-key go together: give both, or neither');
  if (bundle === undefined) {
    if (cert !== undefined)
      throw new CliError(
        '--client-certificate needs --certificate-authority FILE (the roots the control plane chains to; ' +
          '`weft cert request` writes one next to the certificate)',
      );
    clientTls = undefined;
    return;
  }
  clientTls = {
    ca: readFlagFile(bundle, '--certificate-authority'),
    ...(cert === undefined || key === undefined
      ? {}
      : { cert: readFlagFile(cert, '--client-certificate'), key: readFlagFile(key, '--client-key') }),
  };
}

/** The control plane is known by its SPIFFE ID (any trust domain the bundle vouches for). */
const isControlPlane = spiffeServerCheck(
  (id) => /^spiffe:\/\/[^/]+\/ns\/weft-system\/sa\/weft-control-plane$/.test(id),
  { server: 'the server', expected: "the control plane's" },
);

/** One HTTPS exchange with the TLS API, as fetch would give it: status and body text. */
function httpsExchange(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  tls: ClientTls,
): Promise<{ status: number; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        headers,
        ca: tls.ca,
        ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
        minVersion: 'TLSv1.3',
        checkServerIdentity: isControlPlane,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => reject(Object.assign(new Error(e.message), { cause: e })));
    req.end(body);
  });
}

export function serverUrl(flag: string | undefined): string {
  return (flag ?? process.env.WEFT_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, '');
}

export async function request<T>(server: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: { status: number; ok: boolean; text: string };
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(adminToken === undefined ? {} : { authorization: `Bearer ${adminToken}` }),
  };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  try {
    if (server.startsWith('https:')) {
      if (clientTls === undefined)
        throw new CliError(
          `${server} is the control plane's TLS API: give --certificate-authority FILE (and --client-certificate/--client-key ` +
            'for an admin certificate), or use its plain http:// API',
        );
      res = await httpsExchange(`${server}${path}`, method, headers, payload, clientTls);
    } else {
      const r = await fetch(`${server}${path}`, { method, headers, body: payload });
      res = { status: r.status, ok: r.ok, text: await r.text() };
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach the control plane at ${server} (${cause?.code ?? cause?.message ?? (e as Error).message}): ` +
        'is `weft control-plane` running? Point to it with --server URL or WEFT_SERVER.',
    );
  }
  const text = res.text;
  let json: unknown;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new CliError(
      `the server at ${server} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
    );
  }
  if (!res.ok) {
    const err = json as { code?: string; message?: string; errors?: FieldError[] };
    throw new CliError(err.message ?? `HTTP ${res.status}`, err.code, err.errors ?? []);
  }
  return json as T;
}
