// Durability under kill -9: a child process (test/helpers/store-writer.ts) writes to a FileStore
// from several concurrent loops and prints every acknowledged write; we SIGKILL it at a random
// moment, reopen the store here and require every acknowledged write to be there, at its revision,
// with its value. Several rounds on one data dir, so later rounds also recover from earlier kills
// (torn tails, interrupted compactions, stale locks).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { FileStore } from '../../src/store/file-store.js';
import type { Ack } from '../helpers/store-writer.js';
import { repoPath } from '../helpers/paths.js';

const WRITER = repoPath('dist', 'test', 'helpers', 'store-writer.js');
const ROUNDS = 5;

const children = new Set<ChildProcess>();
let dir = '';
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

/** Runs one writer until a random moment after it is ready, kills it, returns its acks. */
async function crashRound(round: number): Promise<{ acks: Ack[]; killedAfterMs: number }> {
  const child = spawn(process.execPath, [WRITER, dir, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  try {
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const ready = new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (out.startsWith('ready\n')) {
          clearInterval(t);
          resolve();
        }
      }, 5);
      void exited.then((code) => {
        clearInterval(t);
        reject(new Error(`writer exited (${code}) before it was ready: ${err}`));
      });
    });
    await ready;
    const killedAfterMs = 50 + Math.floor(Math.random() * 350);
    await new Promise((r) => setTimeout(r, killedAfterMs));
    child.kill('SIGKILL');
    await exited;
    assert.equal(err, '', 'the writer reported an error');
    // The last line may be cut by the kill: only complete lines were acknowledged.
    const lines = out.split('\n').slice(1, -1);
    return { acks: lines.map((l) => JSON.parse(l) as Ack), killedAfterMs };
  } finally {
    child.kill('SIGKILL');
    children.delete(child);
  }
}

test('FileStore survives SIGKILL at random moments without losing an acknowledged write', async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'weft-store-crash-'));
  const acked: Ack[] = [];
  let torn = 0;
  let interruptedCompactions = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { acks, killedAfterMs } = await crashRound(round);
    assert.ok(acks.length > 0, `round ${round}: the writer acknowledged nothing in ${killedAfterMs} ms`);
    acked.push(...acks);

    const store = await FileStore.open(dir, { logger: silentLogger(), limits: { tombstoneRevisions: 1e9 } });
    try {
      if (store.recovery.tornBytesDiscarded > 0) torn++;
      if (store.recovery.removedCompactionTemp) interruptedCompactions++;
      const maxRev = Math.max(...acks.map((a) => a.rev));
      assert.ok(
        store.revision() >= maxRev,
        `round ${round}: revision ${store.revision()} < acknowledged ${maxRev}`,
      );
      // A counter is rewritten thousands of times and its history keeps only the last versions,
      // so for counters only the latest acknowledged write is checked; every other key is
      // written once (and maybe deleted once), so all of their writes are.
      const latest = new Map<string, Ack>();
      for (const a of acked) if (a.key.startsWith('/ctr/')) latest.set(a.key, a);
      for (const a of acked) {
        if (a.key.startsWith('/ctr/') && latest.get(a.key) !== a) continue;
        const kv = await store.get(a.key, { revision: a.rev });
        if (a.op === 'put') {
          assert.equal(kv?.value, a.value, `${a.key}@${a.rev} lost`);
          assert.equal(kv?.modRevision, a.rev);
        } else {
          assert.equal(kv, undefined, `delete of ${a.key}@${a.rev} lost`);
        }
      }
      // Writes whose condition failed never appear.
      const { items } = await store.list(`/k/${round}/`);
      for (const kv of items) assert.notEqual(kv.value, 'never');
    } finally {
      await store.close();
    }
    console.log(
      `round ${round}: killed after ${killedAfterMs} ms, ${acks.length} acknowledged writes checked ` +
        `(${acked.length} in total)`,
    );
  }
  console.log(
    `of ${ROUNDS} reopenings, ${torn} truncated a torn final write and ${interruptedCompactions} ` +
      'found an interrupted compaction',
  );
});
