// One process per data directory. `<dataDir>/LOCK` holds the owner's pid; a lock whose pid is no
// longer running (the owner was killed) is taken over. The file is created complete (written to a
// private temp name, then hard-linked into place, which fails if LOCK exists), so a crash can
// never leave an empty LOCK that nobody could attribute.
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { WeftError } from '../errors.js';

export const LOCK_FILE = 'LOCK';

export interface DirLock {
  release(): Promise<void>;
}

/**
 * Data dirs this process holds. A LOCK naming our own pid that is not in here was left by an
 * earlier process that had the same pid — the rule in containers, where the control plane is
 * pid 1 after every restart — so it is stale, not ours.
 */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, which still means the lock is held.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const n = Number((await fsp.readFile(file, 'utf8')).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function acquireDirLock(dataDir: string): Promise<DirLock> {
  const lockPath = join(dataDir, LOCK_FILE);
  const key = resolve(dataDir);
  const tmp = join(dataDir, `${LOCK_FILE}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await fsp.link(tmp, lockPath);
        heldHere.add(key);
        return {
          release: async () => {
            heldHere.delete(key);
            // Only remove the lock if it is still ours.
            if ((await readPid(lockPath)) === process.pid) await fsp.rm(lockPath, { force: true });
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readPid(lockPath);
      const ownPidLeftOver = holder === process.pid && !heldHere.has(key);
      if (holder !== undefined && isAlive(holder) && !ownPidLeftOver) {
        throw new WeftError(
          'WEFT_E_STORE_LOCKED',
          `data directory ${dataDir} is in use by process ${holder} (${lockPath}). Stop that process, or ` +
            'use another --data-dir; if no such Weft process exists (its pid was reused), delete the LOCK file.',
        );
      }
      // Stale. Move it aside rather than deleting it, so that of two processes taking over at
      // once only one removes it; then make sure what we moved is the stale lock we judged.
      const aside = join(dataDir, `${LOCK_FILE}.stale.${process.pid}`);
      try {
        await fsp.rename(lockPath, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const moved = await readPid(aside);
      if (
        moved !== holder &&
        moved !== undefined &&
        isAlive(moved) &&
        !(moved === process.pid && heldHere.has(key))
      ) {
        // We raced a process that had just taken the lock over; give it back.
        await fsp.link(aside, lockPath).catch(() => {});
        await fsp.rm(aside, { force: true });
        continue;
      }
      await fsp.rm(aside, { force: true });
    }
    throw new WeftError(
      'WEFT_E_STORE_LOCKED',
      `could not take the lock ${lockPath}: other processes keep competing for it; start one Weft per data directory`,
    );
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}
