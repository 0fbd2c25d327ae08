// The CLI's client for the control plane's REST API. Every failure becomes a CliError with a
// message a person can act on: which server, what went wrong, how to fix it.

import type { FieldError } from '../errors.js';

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

export function serverUrl(flag: string | undefined): string {
  return (flag ?? process.env.WEFT_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, '');
}

export async function request<T>(server: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${server}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(adminToken === undefined ? {} : { authorization: `Bearer ${adminToken}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach the control plane at ${server} (${cause?.code ?? cause?.message ?? (e as Error).message}): ` +
        'is `weft control-plane` running? Point to it with --server URL or WEFT_SERVER.',
    );
  }
  const text = await res.text();
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
