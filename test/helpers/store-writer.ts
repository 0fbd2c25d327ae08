// Child process for the crash test: opens a FileStore and writes as fast as it can from several
// concurrent loops (puts, conditional txns, deletes, lease-bound puts), printing one JSON line per
// write only after its promise resolved. The parent SIGKILLs it at a random moment and checks that
// every printed (acknowledged) write survived. stdout is a pipe, which Node writes synchronously,
// so a printed line is never lost to the kill.
//
// usage: node store-writer.js <dataDir> <round>
import { silentLogger } from '../../src/log.js';
import { isWeftError } from '../../src/errors.js';
import { FileStore } from '../../src/store/file-store.js';

export type Ack =
  { op: 'put'; key: string; value: string; rev: number } | { op: 'delete'; key: string; rev: number };

const [dataDir, round] = process.argv.slice(2);
if (!dataDir || !round) {
  process.stderr.write('usage: store-writer <dataDir> <round>\n');
  process.exit(2);
}

function ack(a: Ack): void {
  process.stdout.write(`${JSON.stringify(a)}\n`);
}

const store = await FileStore.open(dataDir, {
  logger: silentLogger(),
  // Compact often so that kills also land in the middle of compactions.
  compactAfterRecords: 150,
  // Keep tombstones, so the parent can check deletions at their revision.
  limits: { tombstoneRevisions: 1e9 },
});
const lease = await store.grantLease(600);
process.stdout.write('ready\n');

async function loop(w: number): Promise<never> {
  const counter = `/ctr/${round}/${w}`;
  let counterRev = 0;
  for (let i = 0; ; i++) {
    const key = `/k/${round}/${w}/${i}`;
    const value = `${round}.${w}.${i}.${'v'.repeat(i % 50)}`;
    if (i % 7 === 3) {
      // Conditional: bump this loop's counter, guarded by the revision we last saw.
      const next = String(i);
      const { revision } = await store.txn(
        [
          { type: 'put', key: counter, value: next },
          { type: 'put', key, value },
        ],
        [{ key: counter, modRevision: counterRev }],
      );
      counterRev = revision;
      ack({ op: 'put', key: counter, value: next, rev: revision });
      ack({ op: 'put', key, value, rev: revision });
    } else if (i % 7 === 5 && i > 2) {
      const victim = `/k/${round}/${w}/${i - 2}`;
      const { revision } = await store.txn([{ type: 'delete', key: victim }]);
      ack({ op: 'delete', key: victim, rev: revision });
    } else if (i % 7 === 6) {
      // A condition that must fail: it must change nothing.
      try {
        await store.txn(
          [{ type: 'put', key, value: 'never' }],
          [{ key: counter, modRevision: counterRev + 1000 }],
        );
        throw new Error('stale condition was accepted');
      } catch (err) {
        if (!isWeftError(err, 'WEFT_E_CONFLICT')) throw err;
      }
    } else {
      const { revision } = await store.txn([{ type: 'put', key, value, lease: i % 7 === 1 ? lease.id : 0 }]);
      ack({ op: 'put', key, value, rev: revision });
    }
  }
}

await Promise.all(Array.from({ length: 8 }, (_, w) => loop(w)));
