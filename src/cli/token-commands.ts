// `weft token create|list|revoke`: join tokens, each entitling a workload to its first SVID for
// one service account. `create` prints the token alone on its last line (scripts take that line:
// `weft token create --service-account fe | tail -n1 > fe.token`), its CA pin included; the
// control plane keeps only its secret's hash, so it cannot be shown again.

import { CliError, request } from './client.js';

interface TokenInfo {
  id: string;
  namespace: string;
  serviceAccount: string;
  expiresAt: string;
  maxUses: number;
  uses: number;
  revoked: boolean;
}

/** `2d`, `24h`, `90m`, `30s`, `1h30m` or plain seconds → seconds; `flag` names it in the error. */
export function parseTtl(text: string, flag = '--ttl'): number {
  if (/^\d+$/.test(text)) return Number(text);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '')
    throw new CliError(`${flag} must be a duration like 2d, 24h, 90m, 1h30m or 45s; got "${text}"`);
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
}

export async function runTokenCreate(
  server: string,
  opts: { serviceAccount: string; namespace: string; ttl: string; maxUses: string },
): Promise<void> {
  const maxUses = Number(opts.maxUses);
  if (!Number.isInteger(maxUses) || maxUses < 0)
    throw new CliError(
      `--max-uses must be a whole number (0 = unlimited until it expires); got "${opts.maxUses}"`,
    );
  const created = await request<TokenInfo & { token: string; caPin?: string }>(
    server,
    'POST',
    '/api/v1/tokens',
    {
      serviceAccount: opts.serviceAccount,
      namespace: opts.namespace,
      ttlSeconds: parseTtl(opts.ttl),
      maxUses,
    },
  );
  const uses =
    created.maxUses === 0
      ? 'any number of times'
      : created.maxUses === 1
        ? 'once'
        : `${created.maxUses} times`;
  console.error(
    `join token ${created.id} for ${created.namespace}/${created.serviceAccount}, usable ${uses} until ${created.expiresAt}`,
  );
  if (created.caPin)
    console.error(
      `it pins the CA root ${created.caPin}: a sidecar refuses a control plane whose trust bundle lacks it`,
    );
  console.error(
    'hand it to `weft sidecar`/`weft run` with --token-file FILE or WEFT_TOKEN; it is not shown again:',
  );
  console.log(created.token);
}

export async function runTokenList(server: string, opts: { output: string }): Promise<void> {
  const { items } = await request<{ items: TokenInfo[] }>(server, 'GET', '/api/v1/tokens');
  if (opts.output === 'json') return void console.log(JSON.stringify(items, null, 2));
  if (items.length === 0) return void console.error('No join tokens.');
  const rows = [
    ['ID', 'NAMESPACE', 'SERVICE ACCOUNT', 'USES', 'EXPIRES', 'STATE'],
    ...items.map((t) => [
      t.id,
      t.namespace,
      t.serviceAccount,
      `${t.uses}/${t.maxUses === 0 ? '∞' : t.maxUses}`,
      t.expiresAt,
      t.revoked ? 'revoked' : Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'valid',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('   ')
        .trimEnd(),
    );
}

export async function runTokenRevoke(server: string, which: string): Promise<void> {
  const body = which.startsWith('weft-jt-') ? { token: which } : { id: which };
  await request(server, 'POST', '/api/v1/tokens/revoke', body);
  console.log(`token ${which.startsWith('weft-jt-') ? '(given)' : which} revoked`);
}
