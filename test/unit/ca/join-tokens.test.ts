// Join tokens: shown once and stored only as a hash; expiry, revocation, use limits; the CA pin
// a token carries, which the store ignores (a token is judged by its secret alone); and the
// atomicity of consumption under concurrency, on both embedded stores.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { JoinTokens, splitJoinToken, TOKENS_PREFIX } from '../../../src/ca/index.js';
import { FileStore, MemoryStore, type Store } from '../../../src/store/index.js';
import { LOG_FILE } from '../../../src/store/log-format.js';
import { manualClock } from './ca-fixtures.js';

const WEB = { namespace: 'default', serviceAccount: 'web' };
const PIN = `sha256-${'p'.repeat(43)}`;
const OTHER_PIN = `sha256-${'q'.repeat(43)}`;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});
async function fileStore(): Promise<{ store: FileStore; dir: string }> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'weft-tokens-'));
  dirs.push(dir);
  return { store: await FileStore.open(dir, { logger: silentLogger() }), dir };
}

async function refusedWith(p: Promise<unknown>, code: string): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isWeftError(e), String(e));
    assert.equal(e.code, code, e.message);
    message = e.message;
    return true;
  });
  return message;
}

async function everyValue(store: Store): Promise<string> {
  const { items } = await store.list('/');
  const history = await Promise.all(items.map((kv) => store.history(kv.key)));
  return JSON.stringify({ items, history });
}

test('the token is shown once and stored only as its SHA-256 (not in values, history, or the log file)', async () => {
  const { store, dir } = await fileStore();
  try {
    const tokens = new JoinTokens(store);
    const created = await tokens.create({ ...WEB, ttlMs: 60_000 });
    assert.match(created.token, /^weft-jt-[A-Za-z0-9_-]{43}$/);
    assert.equal(created.maxUses, 1);
    const secret = created.token.slice('weft-jt-'.length);
    await tokens.consume(created.token);
    await tokens.revoke(created.token);
    const content = await everyValue(store);
    assert.ok(content.includes(created.id), 'the record is there');
    assert.ok(!content.includes(secret), 'the secret is not');
    await store.close();
    const onDisk = await fsp.readFile(join(dir, LOG_FILE));
    assert.ok(onDisk.includes(created.id));
    assert.ok(!onDisk.includes(secret) && !onDisk.includes(Buffer.from(secret, 'base64url')));
    // list() has no secrets either.
    const reopened = await FileStore.open(dir, { logger: silentLogger() });
    try {
      const listed = await new JoinTokens(reopened).list();
      assert.equal(listed.length, 1);
      assert.deepEqual(Object.keys(listed[0]!).sort(), [
        'createdAt',
        'expiresAt',
        'id',
        'maxUses',
        'namespace',
        'revoked',
        'serviceAccount',
        'uses',
      ]);
      assert.equal(listed[0]!.revoked, true);
    } finally {
      await reopened.close();
    }
  } finally {
    await store.close().catch(() => {});
  }
});

test('a token entitles its identity; a single-use token replayed is refused: WEFT_E_TOKEN_USED_UP', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  const { token, id, expiresAt } = await tokens.create({ ...WEB });
  const until = expiresAt.getTime();
  assert.deepEqual(await tokens.verify(token), { tokenId: id, ...WEB, usesLeft: 1, expiresAt: until });
  assert.deepEqual(await tokens.consume(token), { tokenId: id, ...WEB, usesLeft: 0, expiresAt: until });
  const message = await refusedWith(tokens.consume(token), 'WEFT_E_TOKEN_USED_UP');
  assert.match(message, /already used once/);
  await refusedWith(tokens.verify(token), 'WEFT_E_TOKEN_USED_UP');
  assert.equal(tokens.refusals().used_up, 2);
});

test('an expired token is refused: WEFT_E_TOKEN_EXPIRED', async () => {
  const clock = manualClock();
  const tokens = new JoinTokens(new MemoryStore(), clock.now);
  const { token, expiresAt } = await tokens.create({ ...WEB, ttlMs: 5_000, maxUses: 0 });
  assert.equal(expiresAt.getTime(), clock.now() + 5_000);
  clock.advance(4_999);
  await tokens.consume(token);
  clock.advance(1);
  const message = await refusedWith(tokens.consume(token), 'WEFT_E_TOKEN_EXPIRED');
  assert.match(message, /expired at/);
  assert.equal(tokens.refusals().expired, 1);
});

test('a revoked token is refused: WEFT_E_TOKEN_REVOKED; revoke works by id or token', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  const a = await tokens.create({ ...WEB, maxUses: 0 });
  const b = await tokens.create({ ...WEB, maxUses: 0 });
  await tokens.revoke(a.id);
  await tokens.revoke(b.token);
  await tokens.revoke(b.token); // again: no-op
  await refusedWith(tokens.consume(a.token), 'WEFT_E_TOKEN_REVOKED');
  await refusedWith(tokens.verify(b.token), 'WEFT_E_TOKEN_REVOKED');
  await refusedWith(tokens.revoke('0123456789abcdef01234567'), 'WEFT_E_TOKEN_UNKNOWN');
  await refusedWith(tokens.revoke('../../weft/ca/state'), 'WEFT_E_TOKEN_UNKNOWN');
  assert.equal(tokens.refusals().revoked, 2);
});

test('revocation is told to the listeners of that token once, and to one that comes late', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  const a = await tokens.create({ ...WEB, maxUses: 0 });
  const b = await tokens.create({ ...WEB, maxUses: 0 });
  const heard: string[] = [];
  tokens.onRevoked(a.id, () => heard.push('a1'));
  const unsubscribed = tokens.onRevoked(a.id, () => heard.push('a2'));
  tokens.onRevoked(b.id, () => heard.push('b'));
  unsubscribed();
  await tokens.revoke(a.token);
  await tokens.revoke(a.id); // again: already revoked, and nobody is left to tell
  assert.deepEqual(heard, ['a1']);
  // A stream judged just before the revocation subscribes just after it: it still hears.
  const late = new Promise<void>((resolve) => tokens.onRevoked(a.id, resolve));
  await late;
  assert.deepEqual(heard, ['a1']);
});

test('an unknown or malformed token is refused: WEFT_E_TOKEN_UNKNOWN', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  await tokens.create({ ...WEB });
  for (const t of ['', 'nonsense', 'weft-jt-short', `weft-jt-${'A'.repeat(43)}`, `weft-jt-${'A'.repeat(44)}`])
    await refusedWith(tokens.consume(t), 'WEFT_E_TOKEN_UNKNOWN');
  assert.equal(tokens.refusals().unknown, 5);
});

test('maxUses counts down; 0 means unlimited until expiry', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  const three = await tokens.create({ ...WEB, maxUses: 3 });
  assert.deepEqual(
    [(await tokens.consume(three.token)).usesLeft, (await tokens.consume(three.token)).usesLeft],
    [2, 1],
  );
  assert.equal((await tokens.consume(three.token)).usesLeft, 0);
  await refusedWith(tokens.consume(three.token), 'WEFT_E_TOKEN_USED_UP');
  const unlimited = await tokens.create({ ...WEB, maxUses: 0 });
  for (let i = 0; i < 5; i++) assert.equal((await tokens.consume(unlimited.token)).usesLeft, null);
  const listed = await tokens.list();
  assert.deepEqual(
    listed.map((t) => [t.maxUses, t.uses]).sort((a, b) => a[0]! - b[0]!),
    [
      [0, 5],
      [3, 3],
    ],
  );
  // prune() drops what can never be used again.
  assert.equal(await tokens.prune(), 1);
  assert.deepEqual(
    (await tokens.list()).map((t) => t.id),
    [unlimited.id],
  );
});

test('a pinned token is `weft-jt-<secret>.<pin>`; only the secret is hashed and stored', async () => {
  const store = new MemoryStore();
  const tokens = new JoinTokens(store);
  const created = await tokens.create({ ...WEB, maxUses: 0 }, { caPin: PIN });
  assert.match(created.token, /^weft-jt-[A-Za-z0-9_-]{43}\.sha256-[A-Za-z0-9_-]{43}$/);
  assert.equal(created.caPin, PIN);
  const { secret, pin } = splitJoinToken(created.token);
  assert.equal(pin, PIN);
  // The record is what a pinless token of the same secret has always had: the secret's SHA-256.
  const sha256 = createHash('sha256').update(secret).digest('hex');
  const record = JSON.parse((await store.get(TOKENS_PREFIX + created.id))!.value) as { sha256: string };
  assert.equal(record.sha256, sha256);
  assert.equal(created.id, sha256.slice(0, 24));
  assert.ok(!(await everyValue(store)).includes(PIN.slice('sha256-'.length)), 'the pin is not stored');
  // Without a pin asked for, none is added.
  const plain = await tokens.create({ ...WEB });
  assert.match(plain.token, /^weft-jt-[A-Za-z0-9_-]{43}$/);
  assert.equal(plain.caPin, undefined);
  await refusedWith(tokens.create({ ...WEB }, { caPin: 'sha256:abc' }), 'WEFT_E_VALIDATION');
});

test('verify, consume and revoke judge a token by its secret: with its pin, without it, or with a wrong one', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  const created = await tokens.create({ ...WEB, maxUses: 4 }, { caPin: PIN });
  const { secret } = splitJoinToken(created.token);
  const forms = [created.token, secret, `${secret}.${OTHER_PIN}`, `${secret}.not-a-pin`];
  for (const form of forms)
    assert.deepEqual(
      await tokens.verify(form),
      { tokenId: created.id, ...WEB, usesLeft: 4, expiresAt: created.expiresAt.getTime() },
      form,
    );
  // Uses are counted together, whatever form spent them.
  const left = [];
  for (const form of forms) left.push((await tokens.consume(form)).usesLeft);
  assert.deepEqual(left, [3, 2, 1, 0]);
  for (const form of forms) await refusedWith(tokens.verify(form), 'WEFT_E_TOKEN_USED_UP');

  // The right pin on a wrong secret is still an unknown token.
  await refusedWith(tokens.verify(`weft-jt-${'A'.repeat(43)}.${PIN}`), 'WEFT_E_TOKEN_UNKNOWN');
  await refusedWith(tokens.verify(`.${PIN}`), 'WEFT_E_TOKEN_UNKNOWN');

  // A token made before pins (no pin) is accepted with a pin added, as it always was without.
  const old = await tokens.create({ ...WEB, maxUses: 0 });
  assert.equal((await tokens.verify(`${old.token}.${PIN}`)).tokenId, old.id);

  // revoke() by any form reaches the same record.
  for (const form of [`${secret}.${OTHER_PIN}`, created.token, secret]) await tokens.revoke(form);
  await tokens.revoke(`${old.token}.${OTHER_PIN}`);
  await refusedWith(tokens.verify(old.token), 'WEFT_E_TOKEN_REVOKED');
  assert.ok((await tokens.list()).every((t) => t.revoked));
});

test('create() validates its input with field paths', async () => {
  const tokens = new JoinTokens(new MemoryStore());
  await assert.rejects(
    tokens.create({ namespace: 'Bad NS', serviceAccount: '', ttlMs: 10, maxUses: -1 }),
    (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_VALIDATION'));
      assert.deepEqual(e.errors.map((x) => x.path).sort(), [
        'maxUses',
        'namespace',
        'serviceAccount',
        'ttlMs',
      ]);
      return true;
    },
  );
});

for (const kind of ['MemoryStore', 'FileStore'] as const) {
  test(`concurrent consumers of a single-use token: exactly one wins (${kind})`, async () => {
    const opened = kind === 'MemoryStore' ? { store: new MemoryStore() as Store } : await fileStore();
    try {
      const tokens = new JoinTokens(opened.store);
      // Separate JoinTokens instances, as separate API requests or replicas would have.
      const consumers = Array.from({ length: 8 }, () => new JoinTokens(opened.store));
      for (let round = 0; round < 5; round++) {
        const { token } = await tokens.create({ ...WEB });
        const results = await Promise.allSettled(consumers.map((c) => c.consume(token)));
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, `round ${round}`);
        for (const r of results)
          if (r.status === 'rejected')
            assert.ok(isWeftError(r.reason, 'WEFT_E_TOKEN_USED_UP'), String(r.reason));
      }
      // A two-use token: exactly two win.
      const { token } = await tokens.create({ ...WEB, maxUses: 2 });
      const results = await Promise.allSettled(consumers.map((c) => c.consume(token)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
      const stored = (await opened.store.list(TOKENS_PREFIX)).items.map(
        (kv) => JSON.parse(kv.value) as { uses: number },
      );
      assert.deepEqual(stored.map((r) => r.uses).sort(), [1, 1, 1, 1, 1, 2]);
    } finally {
      await opened.store.close();
    }
  });
}
