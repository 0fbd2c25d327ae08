// MemoryStore: the shared contract, plus lease timing driven by a manual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { ManualClock } from './manual-clock.js';
import { nextBatch, rejectsWith, storeContract } from './store-contract.js';

storeContract('MemoryStore', {
  async open(opts) {
    const store = new MemoryStore(opts?.limits ? { limits: opts.limits } : {});
    return { store, dispose: () => store.close() };
  },
});

test('MemoryStore: keepAlive and expiry follow the injected clock exactly', async () => {
  const clock = new ManualClock();
  const s = new MemoryStore({ clock });
  try {
    const { id } = await s.grantLease(10);
    await s.txn([{ type: 'put', key: 'k', value: 'v', lease: id }]);
    clock.advance(9_000);
    await s.keepAlive(id);
    clock.advance(9_000);
    assert.ok(await s.get('k'));
    const gone = nextBatch(s, 'k');
    clock.advance(1_000);
    assert.equal((await gone)[0]?.type, 'delete');
    await rejectsWith(s.keepAlive(id), 'WEFT_E_LEASE_NOT_FOUND');
  } finally {
    await s.close();
  }
});

test('MemoryStore: tombstones of deleted keys are forgotten after a while', async () => {
  const s = new MemoryStore({ limits: { tombstoneRevisions: 3 } });
  try {
    await s.txn([{ type: 'put', key: 'gone', value: '1' }]);
    await s.txn([{ type: 'delete', key: 'gone' }]);
    assert.equal((await s.history('gone')).length, 1);
    for (let i = 0; i < 3; i++) await s.txn([{ type: 'put', key: 'other', value: String(i) }]);
    assert.deepEqual(await s.history('gone'), []);
    // Its past is no longer answerable, rather than wrongly reported as absent.
    await rejectsWith(s.get('gone', { revision: 1 }), 'WEFT_E_COMPACTED');
    assert.equal(await s.get('never', { revision: 4 }), undefined);
  } finally {
    await s.close();
  }
});

test('MemoryStore: a throwing watcher does not stop delivery to others', async () => {
  const s = new MemoryStore();
  try {
    s.watch('', () => {
      throw new Error('boom');
    });
    const got = nextBatch(s, '');
    await s.txn([{ type: 'put', key: 'a', value: '' }]);
    assert.equal((await got).length, 1);
  } finally {
    await s.close();
  }
});
