// The Store contract as tests, run against every implementation (memory-store.test.ts,
// file-store.test.ts) so that they — and the etcd store later — behave the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError, type WeftErrorCode } from '../../../src/errors.js';
import type { StateLimits } from '../../../src/store/mvcc-state.js';
import type { Store, WatchEvent } from '../../../src/store/store.js';

export interface StoreFactory {
  /** A fresh, empty store; `dispose` closes it (if still open) and removes what it left. */
  open(opts?: { limits?: Partial<StateLimits> }): Promise<{ store: Store; dispose: () => Promise<void> }>;
}

export async function rejectsWith(p: Promise<unknown> | (() => unknown), code: WeftErrorCode, re?: RegExp) {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (e: unknown) => {
      assert.ok(isWeftError(e, code), `expected ${code}, got ${String(e)}`);
      if (re) assert.match((e as Error).message, re);
      return true;
    },
  );
}

/**
 * Resolves with the first event batch under `prefix` that satisfies `pred`. Its deadline timer
 * also keeps the process alive meanwhile: the store's own lease timers are unref'ed.
 */
export function nextBatch(
  store: Store,
  prefix: string,
  pred: (evs: WatchEvent[]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<WatchEvent[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.cancel();
      reject(new Error(`no matching event under "${prefix}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const w = store.watch(prefix, (evs) => {
      if (!pred(evs)) return;
      clearTimeout(timer);
      w.cancel();
      resolve(evs);
    });
  });
}

export function collect(store: Store, prefix: string, fromRevision?: number) {
  const batches: WatchEvent[][] = [];
  const w = store.watch(prefix, (evs) => batches.push(evs), fromRevision ? { fromRevision } : {});
  return { batches, cancel: () => w.cancel() };
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeContract(name: string, factory: StoreFactory): void {
  async function withStore(fn: (s: Store) => Promise<void>, limits?: Partial<StateLimits>) {
    const { store, dispose } = await factory.open(limits ? { limits } : {});
    try {
      await fn(store);
    } finally {
      await dispose();
    }
  }

  test(`${name}: empty store`, () =>
    withStore(async (s) => {
      assert.equal(s.revision(), 0);
      assert.equal(await s.get('a'), undefined);
      assert.deepEqual(await s.list(''), { items: [], revision: 0 });
      assert.deepEqual(await s.history('a'), []);
    }));

  test(`${name}: puts track create/mod revision and version`, () =>
    withStore(async (s) => {
      assert.deepEqual(await s.txn([{ type: 'put', key: 'a', value: '1' }]), { revision: 1 });
      await s.txn([{ type: 'put', key: 'b', value: 'x' }]);
      assert.deepEqual(await s.txn([{ type: 'put', key: 'a', value: '2' }]), { revision: 3 });
      assert.deepEqual(await s.get('a'), {
        key: 'a',
        value: '2',
        createRevision: 1,
        modRevision: 3,
        version: 2,
        lease: 0,
      });
      assert.equal(s.revision(), 3);
    }));

  test(`${name}: list is sorted, prefix-filtered and carries the read revision`, () =>
    withStore(async (s) => {
      await s.txn([
        { type: 'put', key: '/r/c', value: 'c' },
        { type: 'put', key: '/r/a', value: 'a' },
        { type: 'put', key: '/other', value: 'o' },
      ]);
      await s.txn([{ type: 'put', key: '/r/b', value: 'b' }]);
      const l = await s.list('/r/');
      assert.deepEqual(
        l.items.map((kv) => kv.key),
        ['/r/a', '/r/b', '/r/c'],
      );
      assert.equal(l.revision, 2);
    }));

  test(`${name}: a txn is atomic and its ops share one revision`, () =>
    withStore(async (s) => {
      await s.txn([{ type: 'put', key: 'k', value: 'v1' }]);
      const r = await s.txn(
        [
          { type: 'put', key: 'k', value: 'v2' },
          { type: 'put', key: 'n', value: 'new' },
        ],
        [
          { key: 'k', modRevision: 1 },
          { key: 'n', modRevision: 0 },
        ],
      );
      assert.equal(r.revision, 2);
      assert.equal((await s.get('k'))?.modRevision, 2);
      assert.equal((await s.get('n'))?.modRevision, 2);
      // One failing condition: nothing applies, revision unchanged, error names the key.
      await rejectsWith(
        s.txn(
          [
            { type: 'put', key: 'k', value: 'v3' },
            { type: 'delete', key: 'n' },
          ],
          [
            { key: 'n', modRevision: 2 },
            { key: 'k', modRevision: 1 },
          ],
        ),
        'WEFT_E_CONFLICT',
        /"k"/,
      );
      await rejectsWith(
        s.txn([{ type: 'put', key: 'x', value: '' }], [{ key: 'k', modRevision: 0 }]),
        'WEFT_E_CONFLICT',
      );
      await rejectsWith(
        s.txn([{ type: 'put', key: 'x', value: '' }], [{ key: 'zz', modRevision: 5 }]),
        'WEFT_E_CONFLICT',
        /zz/,
      );
      assert.equal(s.revision(), 2);
      assert.equal((await s.get('k'))?.value, 'v2');
      assert.equal(await s.get('x'), undefined);
    }));

  test(`${name}: concurrent compare-and-swap on one key: exactly one wins`, () =>
    withStore(async (s) => {
      const { revision } = await s.txn([{ type: 'put', key: 'c', value: '0' }]);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          s.txn([{ type: 'put', key: 'c', value: String(i + 1) }], [{ key: 'c', modRevision: revision }]),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results)
        if (r.status === 'rejected') assert.ok(isWeftError(r.reason, 'WEFT_E_CONFLICT'));
      assert.equal((await s.get('c'))?.version, 2);
    }));

  test(`${name}: deletes; a missing key's delete is a no-op; re-creation starts a new life`, () =>
    withStore(async (s) => {
      await s.txn([{ type: 'put', key: 'd', value: '1' }]);
      await s.txn([{ type: 'put', key: 'd', value: '2' }]);
      assert.deepEqual(await s.txn([{ type: 'delete', key: 'missing' }]), { revision: 2 });
      assert.deepEqual(await s.txn([{ type: 'delete', key: 'd' }]), { revision: 3 });
      assert.equal(await s.get('d'), undefined);
      await s.txn([{ type: 'put', key: 'd', value: '3' }]);
      const kv = await s.get('d');
      assert.deepEqual([kv?.createRevision, kv?.version], [4, 1]);
      // Reads at past revisions, through the deletion.
      assert.equal((await s.get('d', { revision: 2 }))?.value, '2');
      assert.equal(await s.get('d', { revision: 3 }), undefined);
      assert.equal((await s.get('d', { revision: 1 }))?.value, '1');
      assert.deepEqual(
        (await s.history('d')).map((h) => [h.value, h.modRevision]),
        [
          ['1', 1],
          ['2', 2],
          ['3', 4],
        ],
      );
    }));

  test(`${name}: bad requests are refused with WEFT_E_BAD_REQUEST`, () =>
    withStore(async (s) => {
      await rejectsWith(
        s.txn([
          { type: 'put', key: 'a', value: '1' },
          { type: 'delete', key: 'a' },
        ]),
        'WEFT_E_BAD_REQUEST',
        /twice/,
      );
      await rejectsWith(s.txn([{ type: 'put', key: '', value: '1' }]), 'WEFT_E_BAD_REQUEST');
      await rejectsWith(s.get('a', { revision: 5 }), 'WEFT_E_BAD_REQUEST');
      await rejectsWith(s.grantLease(0), 'WEFT_E_BAD_REQUEST');
    }));

  test(`${name}: history is bounded per key and reads below it are compacted`, () =>
    withStore(
      async (s) => {
        for (let i = 1; i <= 5; i++) await s.txn([{ type: 'put', key: 'h', value: String(i) }]);
        assert.deepEqual(
          (await s.history('h')).map((kv) => kv.value),
          ['3', '4', '5'],
        );
        assert.equal((await s.get('h', { revision: 3 }))?.value, '3');
        await rejectsWith(s.get('h', { revision: 2 }), 'WEFT_E_COMPACTED');
      },
      { historyPerKey: 3 },
    ));

  test(`${name}: watch replays from a revision, then streams live, one batch per txn`, () =>
    withStore(async (s) => {
      await s.txn([{ type: 'put', key: '/w/a', value: '1' }]);
      await s.txn([
        { type: 'put', key: '/w/b', value: '2' },
        { type: 'put', key: '/x/ignored', value: '' },
      ]);
      await s.txn([{ type: 'delete', key: '/w/a' }]);
      const c = collect(s, '/w/', 2);
      const done = nextBatch(s, '/w/', (evs) => evs.some((e) => e.type === 'put' && e.kv.key === '/w/d'));
      await s.txn([
        { type: 'put', key: '/w/c', value: '3' },
        { type: 'put', key: '/w/d', value: '4' },
      ]);
      await done;
      await tick();
      c.cancel();
      const shape = c.batches.map((b) =>
        b.map((e) =>
          e.type === 'put' ? `put ${e.kv.key}@${e.kv.modRevision}` : `delete ${e.key}@${e.revision}`,
        ),
      );
      assert.deepEqual(shape, [['put /w/b@2'], ['delete /w/a@3'], ['put /w/c@4', 'put /w/d@4']]);
      const del = c.batches[1]?.[0];
      assert.equal(del?.type === 'delete' ? del.prev?.value : undefined, '1');
      // Cancelled: no more events.
      await s.txn([{ type: 'put', key: '/w/e', value: '' }]);
      await tick();
      assert.equal(c.batches.length, 3);
    }));

  test(`${name}: a watch is notified only once the write is acknowledged-ready and in order`, () =>
    withStore(async (s) => {
      const seen: number[] = [];
      const w = s.watch('', (evs) => {
        for (const e of evs) if (e.type === 'put') seen.push(e.kv.modRevision);
      });
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => s.txn([{ type: 'put', key: `k${i}`, value: '' }])),
      );
      await tick();
      w.cancel();
      assert.deepEqual(
        seen,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    }));

  test(`${name}: watching from a revision no longer in the event log is WEFT_E_COMPACTED`, () =>
    withStore(
      async (s) => {
        for (let i = 0; i < 10; i++) await s.txn([{ type: 'put', key: 'k', value: String(i) }]);
        assert.throws(
          () => s.watch('', () => {}, { fromRevision: 2 }),
          (e: unknown) => isWeftError(e, 'WEFT_E_COMPACTED'),
        );
        const c = collect(s, '', 6);
        await tick();
        c.cancel();
        assert.equal(c.batches.length, 5);
        // From a future revision: nothing until the store gets there.
        const f = collect(s, '', 12);
        await s.txn([{ type: 'put', key: 'k', value: '10' }]);
        await s.txn([{ type: 'put', key: 'k', value: '11' }]);
        await tick();
        f.cancel();
        assert.deepEqual(
          f.batches.map((b) => (b[0]?.type === 'put' ? b[0].kv.modRevision : 0)),
          [12],
        );
      },
      { eventLogRevisions: 5 },
    ));

  test(`${name}: an expiring lease deletes its keys in one txn and tells watchers`, () =>
    withStore(async (s) => {
      const lease = await s.grantLease(1);
      assert.equal(lease.ttlSeconds, 1);
      await s.txn([
        { type: 'put', key: '/l/a', value: '', lease: lease.id },
        { type: 'put', key: '/l/b', value: '', lease: lease.id },
        { type: 'put', key: '/l/keep', value: '' },
      ]);
      // Re-put without the lease: detached, survives.
      await s.txn([{ type: 'put', key: '/l/free', value: '', lease: lease.id }]);
      await s.txn([{ type: 'put', key: '/l/free', value: 'now free' }]);
      assert.equal((await s.get('/l/a'))?.lease, lease.id);
      const t0 = Date.now();
      const evs = await nextBatch(s, '/l/', (b) => b.some((e) => e.type === 'delete'));
      assert.ok(Date.now() - t0 >= 700, 'expired too early');
      assert.deepEqual(
        evs.map((e) => (e.type === 'delete' ? e.key : '?')),
        ['/l/a', '/l/b'],
      );
      assert.equal(
        evs[0]?.type === 'delete' && evs[1]?.type === 'delete' && evs[0].revision === evs[1].revision,
        true,
      );
      assert.deepEqual(
        (await s.list('/l/')).items.map((kv) => kv.key),
        ['/l/free', '/l/keep'],
      );
      await rejectsWith(s.keepAlive(lease.id), 'WEFT_E_LEASE_NOT_FOUND');
      await rejectsWith(
        s.txn([{ type: 'put', key: '/l/c', value: '', lease: lease.id }]),
        'WEFT_E_LEASE_NOT_FOUND',
      );
    }));

  test(`${name}: keepAlive restarts the countdown`, () =>
    withStore(async (s) => {
      const lease = await s.grantLease(1);
      await s.txn([{ type: 'put', key: 'ka', value: '', lease: lease.id }]);
      const t0 = Date.now();
      await sleep(600);
      await s.keepAlive(lease.id);
      await sleep(600); // 1.2 s after the grant: expired, had keepAlive not restarted the TTL
      assert.ok(await s.get('ka'), 'key expired despite keepAlive');
      await nextBatch(s, 'ka');
      assert.ok(Date.now() - t0 >= 1400);
      assert.equal(await s.get('ka'), undefined);
    }));

  test(`${name}: revoke deletes at once; unknown leases are WEFT_E_LEASE_NOT_FOUND`, () =>
    withStore(async (s) => {
      const lease = await s.grantLease(60);
      const empty = await s.grantLease(60);
      await s.txn([{ type: 'put', key: 'r', value: '', lease: lease.id }]);
      const rev = s.revision();
      const ev = nextBatch(s, 'r');
      await s.revokeLease(lease.id);
      assert.equal(s.revision(), rev + 1);
      assert.equal(await s.get('r'), undefined);
      assert.equal((await ev)[0]?.type, 'delete');
      await s.revokeLease(empty.id);
      assert.equal(s.revision(), rev + 1, 'revoking a lease without keys changes nothing');
      await rejectsWith(s.revokeLease(lease.id), 'WEFT_E_LEASE_NOT_FOUND');
      await rejectsWith(s.keepAlive(12345), 'WEFT_E_LEASE_NOT_FOUND');
      assert.notEqual(lease.id, empty.id);
    }));

  test(`${name}: every call after close() is WEFT_E_STORE_CLOSED`, async () => {
    const { store: s, dispose } = await factory.open();
    try {
      const pending = s.txn([{ type: 'put', key: 'before', value: '' }]);
      await s.close();
      await pending; // requested before close: flushed, not dropped
      await s.close(); // idempotent
      assert.throws(
        () => s.revision(),
        (e: unknown) => isWeftError(e, 'WEFT_E_STORE_CLOSED'),
      );
      assert.throws(
        () => s.watch('', () => {}),
        (e: unknown) => isWeftError(e, 'WEFT_E_STORE_CLOSED'),
      );
      await rejectsWith(s.get('a'), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.list(''), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.history('a'), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.txn([]), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.grantLease(1), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.keepAlive(1), 'WEFT_E_STORE_CLOSED');
      await rejectsWith(s.revokeLease(1), 'WEFT_E_STORE_CLOSED');
    } finally {
      await dispose();
    }
  });
}
