// Fuzz test of the log parser and replay, the one place the store reads untrusted bytes. Property:
// whatever single damage (truncation, or overwritten bytes) a valid log suffers, FileStore.open
// either refuses with a store error, or opens with every record that lay wholly before the damage.
// The seed examples (header, frame fields, record boundaries) also run on every test run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isWeftError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { FileStore } from '../../../src/store/file-store.js';
import { LOG_FILE, scanLog } from '../../../src/store/log-format.js';
import type { KeyValue } from '../../../src/store/store.js';

const STORE_CODES = new Set(['WEFT_E_STORE_CORRUPT', 'WEFT_E_STORE_FOREIGN']);

let dir = '';
let log: Buffer;
/** For each record: where it ends, the revision after it, and every key's value then. */
let checkpoints: { end: number; revision: number; values: Map<string, string | undefined> }[] = [];

before(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'weft-store-fuzz-'));
  const s = await FileStore.open(dir, { logger: silentLogger() });
  const values = new Map<string, string | undefined>();
  const ends: number[] = [];
  const snapshots: Map<string, string | undefined>[] = [];
  const revisions: number[] = [];
  const lease = await s.grantLease(60);
  ends.push(s.stats().logBytes);
  snapshots.push(new Map(values));
  revisions.push(s.revision());
  for (let i = 0; i < 12; i++) {
    const key = `/f/${i % 4}`;
    if (i % 5 === 4) {
      await s.txn([{ type: 'delete', key }]);
      values.set(key, undefined);
    } else {
      await s.txn([
        { type: 'put', key, value: `v${i}`, lease: i % 3 === 0 ? lease.id : 0 },
        { type: 'put', key: `/g/${i}`, value: 'é'.repeat(i) },
      ]);
      values.set(key, `v${i}`);
      values.set(`/g/${i}`, 'é'.repeat(i));
    }
    ends.push(s.stats().logBytes);
    snapshots.push(new Map(values));
    revisions.push(s.revision());
  }
  await s.close();
  log = await fsp.readFile(join(dir, LOG_FILE));
  checkpoints = ends.map((end, i) => ({
    end,
    revision: revisions[i] ?? 0,
    values: snapshots[i] ?? new Map(),
  }));
  assert.equal(scanLog(log, LOG_FILE).records.length, 13);
});

after(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

type Damage = { kind: 'truncate'; at: number } | { kind: 'overwrite'; at: number; bytes: number[] };

function damage(d: Damage): Buffer {
  if (d.kind === 'truncate') return log.subarray(0, d.at);
  const b = Buffer.from(log);
  d.bytes.forEach((x, i) => {
    if (d.at + i < b.length) b[d.at + i] = x;
  });
  return b;
}

/** The first byte that differs from the valid log (its length if it is a prefix). */
function damagedOffset(b: Buffer): number {
  const n = Math.min(b.length, log.length);
  for (let i = 0; i < n; i++) if (b[i] !== log[i]) return i;
  return n;
}

async function check(d: Damage): Promise<void> {
  const bytes = damage(d);
  await fsp.writeFile(join(dir, LOG_FILE), bytes);
  let store: FileStore;
  try {
    store = await FileStore.open(dir, { logger: silentLogger() });
  } catch (err) {
    assert.ok(isWeftError(err) && STORE_CODES.has(err.code), `open threw a non-store error: ${String(err)}`);
    assert.match((err as Error).message, new RegExp(LOG_FILE.replace('.', '\\.')));
    return;
  }
  try {
    const off = damagedOffset(bytes);
    const kept = checkpoints.filter((c) => c.end <= off).pop();
    if (kept) {
      assert.ok(
        store.revision() >= kept.revision,
        `revision ${store.revision()} < ${kept.revision} before offset ${off}`,
      );
      for (const [key, value] of kept.values) {
        const kv: KeyValue | undefined =
          kept.revision > 0 ? await store.get(key, { revision: kept.revision }) : undefined;
        assert.equal(kv?.value, value, `${key}@${kept.revision} (damage at ${off})`);
      }
    }
  } finally {
    await store.close();
  }
}

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: 4000 }) }),
  fc.record({
    kind: fc.constant('overwrite' as const),
    at: fc.nat({ max: 4000 }),
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }),
  }),
);

test('log replay: any damage is refused with a store error or loses nothing before it', async () => {
  const boundaries = checkpoints.map((c) => c.end);
  const examples: [Damage][] = [
    [{ kind: 'truncate', at: 0 }],
    [{ kind: 'truncate', at: 5 }],
    [{ kind: 'overwrite', at: 0, bytes: [0x58] }], // magic
    [{ kind: 'overwrite', at: 8, bytes: [9] }], // format version
    [{ kind: 'overwrite', at: 12, bytes: [0xff, 0xff, 0xff, 0x7f] }], // first length → past EOF
    [{ kind: 'overwrite', at: 12, bytes: [1] }], // first length → short
    [{ kind: 'overwrite', at: 16, bytes: [0] }], // first crc
    [{ kind: 'overwrite', at: log.length - 1, bytes: [0] }], // last byte
    ...boundaries.map((at): [Damage] => [{ kind: 'truncate', at }]),
    ...boundaries.map((at): [Damage] => [{ kind: 'truncate', at: at + 3 }]),
  ];
  await fc.assert(
    fc.asyncProperty(damageArb, (d) => check(d.at <= log.length ? d : { ...d, at: d.at % log.length })),
    { numRuns: 250, examples },
  );
});

test('log scanner: arbitrary bytes after a valid header only ever raise store errors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (tail, keepHeader) => {
      const buf = Buffer.concat([keepHeader ? log.subarray(0, 12) : Buffer.alloc(0), tail]);
      try {
        scanLog(buf, LOG_FILE);
      } catch (err) {
        assert.ok(isWeftError(err) && STORE_CODES.has(err.code), String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
