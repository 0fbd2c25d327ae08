// FileStore: the shared contract, then what only a durable store has: restart, group commit,
// compaction, recovery from torn and damaged logs, foreign files, and the data-dir lock.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log.js';
import { COMPACT_TEMP_FILE, FileStore, type FileStoreOptions } from '../../../src/store/file-store.js';
import { encodeHeader, encodeRecord, LOG_FILE } from '../../../src/store/log-format.js';
import type { Store } from '../../../src/store/store.js';
import { collect, nextBatch, rejectsWith, storeContract } from './store-contract.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await fsp.mkdtemp(join(tmpdir(), 'weft-store-'));
  dirs.push(d);
  return d;
}

const quiet = { logger: silentLogger() };
const open = (dir: string, opts: FileStoreOptions = {}) => FileStore.open(dir, { ...quiet, ...opts });

storeContract('FileStore', {
  async open(opts) {
    const dir = await tempDir();
    const store = await open(dir, opts?.limits ? { limits: opts.limits } : {});
    return {
      store,
      dispose: async () => {
        await store.close();
        await fsp.rm(dir, { recursive: true, force: true });
      },
    };
  },
});

async function dump(s: Store) {
  const { items, revision } = await s.list('');
  const histories = await Promise.all(items.map((kv) => s.history(kv.key)));
  return { items, revision, histories };
}

/** A few revisions of mixed changes, including a deleted key and a lease-bound one. */
async function fill(s: Store): Promise<number> {
  const lease = await s.grantLease(30);
  for (let i = 0; i < 5; i++) {
    await s.txn([
      { type: 'put', key: `/a/${i % 3}`, value: `v${i}` },
      { type: 'put', key: `/b/${i}`, value: 'x'.repeat(i) },
    ]);
  }
  await s.txn([{ type: 'delete', key: '/b/0' }]);
  await s.txn([{ type: 'put', key: '/leased', value: 'l', lease: lease.id }]);
  return lease.id;
}

test('FileStore: a restart keeps keys, revisions, history and leases', async () => {
  const dir = await tempDir();
  const a = await open(dir);
  const leaseId = await fill(a);
  const before = await dump(a);
  await a.close();

  const b = await open(dir);
  try {
    assert.deepEqual(await dump(b), before);
    assert.equal(b.revision(), 7);
    assert.equal((await b.get('/a/0', { revision: 1 }))?.value, 'v0');
    assert.equal((await b.get('/leased'))?.lease, leaseId);
    // The lease is alive again (fresh TTL) and still owns its key.
    await b.keepAlive(leaseId);
    await b.revokeLease(leaseId);
    assert.equal(await b.get('/leased'), undefined);
    // Event history since the start of the log is replayable after a restart.
    const c = collect(b, '/a/', 1);
    await new Promise((r) => setImmediate(r));
    c.cancel();
    assert.equal(c.batches.length, 5);
    // New lease ids never reuse old ones.
    assert.ok((await b.grantLease(5)).id > leaseId);
    assert.equal(b.recovery.created, false);
  } finally {
    await b.close();
  }
});

test('FileStore: a restored lease expires after a full TTL and takes its keys', async () => {
  const dir = await tempDir();
  const a = await open(dir);
  const { id } = await a.grantLease(1);
  await a.txn([{ type: 'put', key: 'eph', value: '', lease: id }]);
  await a.close();
  const b = await open(dir);
  try {
    assert.ok(await b.get('eph'));
    await nextBatch(b, 'eph', (evs) => evs[0]?.type === 'delete');
  } finally {
    await b.close();
  }
  const c = await open(dir);
  try {
    assert.equal(await c.get('eph'), undefined, 'the expiry was itself durable');
    await rejectsWith(c.keepAlive(id), 'WEFT_E_LEASE_NOT_FOUND');
  } finally {
    await c.close();
  }
});

test('FileStore: group commit batches concurrent txns into few fsyncs, in order', async () => {
  const dir = await tempDir();
  const s = await open(dir);
  try {
    const n = 500;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => s.txn([{ type: 'put', key: `/g/${i}`, value: String(i) }])),
    );
    const { fsyncs, txns } = s.stats();
    assert.equal(txns, n);
    assert.deepEqual(
      results.map((r) => r.revision),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    assert.ok(fsyncs * 20 <= n, `expected far fewer fsyncs than txns, got ${fsyncs} for ${n}`);
    console.log(`group commit: ${n} concurrent txns in ${fsyncs} fsyncs`);

    // Sustained load: a steady stream (not one burst) still shares fsyncs.
    const before = s.stats().fsyncs;
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 25; i++) await s.txn([{ type: 'put', key: `/s/${w}`, value: String(i) }]);
    });
    await Promise.all(writers);
    const used = s.stats().fsyncs - before;
    assert.ok(used * 4 <= 400, `16 writers × 25 txns took ${used} fsyncs`);
    console.log(`group commit: 16 concurrent writers, 400 txns in ${used} fsyncs`);
  } finally {
    await s.close();
  }
});

test('FileStore: in one batch, each condition sees the earlier txns; a failure rejects only its txn', async () => {
  const dir = await tempDir();
  const s = await open(dir);
  try {
    const first = s.txn([{ type: 'put', key: 'k', value: 'first' }], [{ key: 'k', modRevision: 0 }]);
    const dup = s.txn([{ type: 'put', key: 'k', value: 'dup' }], [{ key: 'k', modRevision: 0 }]);
    const next = s.txn([{ type: 'put', key: 'k', value: 'second' }], [{ key: 'k', modRevision: 1 }]);
    const other = s.txn([{ type: 'put', key: 'o', value: '' }]);
    const dupFailed = rejectsWith(dup, 'WEFT_E_CONFLICT');
    assert.deepEqual(await first, { revision: 1 });
    await dupFailed;
    assert.deepEqual(await next, { revision: 2 });
    assert.deepEqual(await other, { revision: 3 });
    assert.equal(s.stats().fsyncs, 1);
  } finally {
    await s.close();
  }
  const r = await open(dir);
  try {
    assert.equal((await r.get('k'))?.value, 'second');
    assert.equal(r.revision(), 3);
  } finally {
    await r.close();
  }
});

test('FileStore: compaction keeps state and history; old watch revisions become compacted', async () => {
  const dir = await tempDir();
  const s = await open(dir, { compactAfterRecords: 50 });
  for (let i = 0; i < 120; i++) await s.txn([{ type: 'put', key: `/c/${i % 7}`, value: String(i) }]);
  await s.txn([{ type: 'delete', key: '/c/0' }]);
  const leaseId = await fill(s);
  assert.ok(s.stats().compactions >= 2, `compactions: ${s.stats().compactions}`);
  const before = await dump(s);
  const deletedHistory = await s.history('/c/0');
  await s.compact();
  const size = (await fsp.stat(join(dir, LOG_FILE))).size;
  assert.equal(s.stats().logBytes, size);
  await s.close();

  const r = await open(dir);
  try {
    assert.deepEqual(await dump(r), before);
    assert.deepEqual(await r.history('/c/0'), deletedHistory);
    assert.equal((await r.get('/c/3', { revision: 60 }))?.value, '59');
    assert.equal((await r.get('/leased'))?.lease, leaseId);
    assert.throws(
      () => r.watch('', () => {}, { fromRevision: 5 }),
      (e: unknown) => (e as { code?: string }).code === 'WEFT_E_COMPACTED',
    );
    const rev = r.revision();
    const live = nextBatch(r, '', () => true);
    r.watch('', () => {}, { fromRevision: rev + 1 }).cancel();
    await r.txn([{ type: 'put', key: 'after', value: '' }]);
    assert.equal((await live)[0]?.type, 'put');
  } finally {
    await r.close();
  }
});

test('FileStore: the log stays small under a steady overwrite load', async () => {
  const dir = await tempDir();
  const s = await open(dir, { compactAfterBytes: 64 * 1024 });
  try {
    for (let i = 0; i < 400; i++) await s.txn([{ type: 'put', key: `/o/${i % 4}`, value: 'x'.repeat(500) }]);
    assert.ok(s.stats().compactions > 0);
    assert.ok((await fsp.stat(join(dir, LOG_FILE))).size < 2 * 64 * 1024 + 100 * 1024);
  } finally {
    await s.close();
  }
});

test('FileStore: leftovers of a crash during compaction are ignored and removed', async () => {
  const dir = await tempDir();
  const a = await open(dir);
  await fill(a);
  const before = await dump(a);
  await a.close();
  for (const leftover of [
    Buffer.from('half a snapsh'),
    // Even a complete, valid temp never became the log, so it must not be used.
    Buffer.concat([
      encodeHeader(),
      encodeRecord({
        k: 'snapshot',
        state: { revision: 0, nextLeaseId: 1, forgottenBelow: 0, leases: [], keys: [] },
      }),
    ]),
  ]) {
    await fsp.writeFile(join(dir, COMPACT_TEMP_FILE), leftover);
    const b = await open(dir);
    try {
      assert.equal(b.recovery.removedCompactionTemp, true);
      assert.deepEqual(await dump(b), before);
      await assert.rejects(fsp.stat(join(dir, COMPACT_TEMP_FILE)));
    } finally {
      await b.close();
    }
  }
});

test('FileStore: a torn final write is truncated, with everything acknowledged kept', async () => {
  const dir = await tempDir();
  const a = await open(dir);
  await fill(a);
  const before = await dump(a);
  await a.close();
  const file = join(dir, LOG_FILE);
  const good = await fsp.readFile(file);
  const extra = encodeRecord({
    k: 'batch',
    entries: [{ t: 'txn', rev: 8, ops: [{ type: 'delete', key: '/a/1' }] }],
  });
  const tails = [
    extra.subarray(0, 3), // frame header cut
    extra.subarray(0, extra.length - 1), // payload cut
    Buffer.concat([extra.subarray(0, 8), Buffer.alloc(extra.length - 8)]), // pages never written
  ];
  for (const tail of tails) {
    await fsp.writeFile(file, Buffer.concat([good, tail]));
    const b = await open(dir);
    try {
      assert.equal(b.recovery.tornBytesDiscarded, tail.length);
      assert.deepEqual(await dump(b), before);
      assert.equal((await fsp.stat(file)).size, good.length);
      // The cut bytes are kept beside the log, in case they were not a torn write after all.
      assert.deepEqual(await fsp.readFile(`${file}.torn-${good.length}`), tail);
    } finally {
      await b.close();
    }
  }
  // And the store goes on appending after the cut.
  const c = await open(dir);
  await c.txn([{ type: 'put', key: 'after-cut', value: '1' }]);
  await c.close();
  const d = await open(dir);
  assert.equal((await d.get('after-cut'))?.value, '1');
  await d.close();
});

test('FileStore: damage before the end is refused with the file and byte offset', async () => {
  const dir = await tempDir();
  const a = await open(dir);
  await fill(a);
  await a.close();
  const file = join(dir, LOG_FILE);
  const good = await fsp.readFile(file);
  const bad = Buffer.from(good);
  bad.writeUInt8(bad.readUInt8(25) ^ 0x20, 25); // inside the first record's payload; more records follow
  await fsp.writeFile(file, bad);
  await rejectsWith(
    open(dir),
    'WEFT_E_STORE_CORRUPT',
    /weft-store\.log is damaged at byte offset 12:.*backup/,
  );
  // Refusing must not change the file, nor leave the directory locked.
  assert.deepEqual(await fsp.readFile(file), bad);
  await rejectsWith(open(dir), 'WEFT_E_STORE_CORRUPT');
});

test('FileStore: a record that checks out but does not follow from the log is refused', async () => {
  const dir = await tempDir();
  const file = join(dir, LOG_FILE);
  await fsp.writeFile(
    file,
    Buffer.concat([
      encodeHeader(),
      encodeRecord({
        k: 'batch',
        entries: [{ t: 'txn', rev: 1, ops: [{ type: 'put', key: 'a', value: '', lease: 0 }] }],
      }),
      encodeRecord({
        k: 'batch',
        entries: [{ t: 'txn', rev: 5, ops: [{ type: 'put', key: 'b', value: '', lease: 0 }] }],
      }),
    ]),
  );
  await rejectsWith(open(dir), 'WEFT_E_STORE_CORRUPT', /byte offset \d+/);
});

test('FileStore: foreign files and unknown versions are refused; unrelated files are fine', async () => {
  const dir = await tempDir();
  const file = join(dir, LOG_FILE);
  await fsp.writeFile(file, 'some other program wrote this\n');
  await rejectsWith(open(dir), 'WEFT_E_STORE_FOREIGN', /weft-store\.log/);
  const v2 = encodeHeader();
  v2.writeUInt32LE(2, 8);
  await fsp.writeFile(file, v2);
  await rejectsWith(open(dir), 'WEFT_E_STORE_FOREIGN', /version is 2/);
  await fsp.writeFile(file, encodeHeader().subarray(0, 10));
  await rejectsWith(open(dir), 'WEFT_E_STORE_CORRUPT');
  await fsp.writeFile(file, '');
  await rejectsWith(open(dir), 'WEFT_E_STORE_CORRUPT');

  const fresh = await tempDir();
  await fsp.writeFile(join(fresh, 'ca.pem'), 'not ours');
  await fsp.mkdir(join(fresh, 'snapshots'));
  const s = await open(fresh);
  assert.equal(s.recovery.created, true);
  await s.close();
  assert.equal(await fsp.readFile(join(fresh, 'ca.pem'), 'utf8'), 'not ours');
});

test('FileStore: creates a missing data dir with mode 0700', async () => {
  const dir = join(await tempDir(), 'nested', 'data');
  const s = await open(dir);
  await s.close();
  assert.equal((await fsp.stat(dir)).mode & 0o777, 0o700);
});

function runChild(args: string[]): { pid: number; exited: Promise<void>; kill: () => void } {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { pid: child.pid as number, exited, kill: () => child.kill('SIGKILL') };
}

test("FileStore: one process per data dir; a dead owner's lock is taken over", async () => {
  const dir = await tempDir();
  const a = await open(dir);
  await rejectsWith(open(dir), 'WEFT_E_STORE_LOCKED', new RegExp(`process ${process.pid}`));
  await a.close();

  const live = runChild(['-e', 'setTimeout(() => {}, 30000)']);
  try {
    await fsp.writeFile(join(dir, 'LOCK'), `${live.pid}\n`);
    await rejectsWith(open(dir), 'WEFT_E_STORE_LOCKED', new RegExp(`process ${live.pid}`));
  } finally {
    live.kill();
    await live.exited;
  }
  // The same pid, now dead: a kill -9 leaves exactly this behind.
  const s = await open(dir);
  assert.equal((await fsp.readFile(join(dir, 'LOCK'), 'utf8')).trim(), String(process.pid));
  await s.close();
  await assert.rejects(fsp.stat(join(dir, 'LOCK')), 'close() releases the lock');
});

test('FileStore: a LOCK naming our own pid, left by an earlier process (containers: pid 1), is stale', async () => {
  const dir = await tempDir();
  const first = await open(dir);
  await first.txn([{ type: 'put', key: '/k', value: 'v' }]);
  await first.close();
  // What kill -9 of a previous incarnation with the same pid leaves behind.
  await fsp.writeFile(join(dir, 'LOCK'), `${process.pid}\n`);
  const s = await open(dir);
  try {
    assert.equal((await s.get('/k'))?.value, 'v');
    // Still one opener per data dir within this process.
    await rejectsWith(open(dir), 'WEFT_E_STORE_LOCKED', new RegExp(`process ${process.pid}`));
  } finally {
    await s.close();
  }
});
