// The embedded default store: the shared StoreCore made durable by an append-only log in the data
// directory (format in log-format.ts). A write is acknowledged only after its record is written
// and fdatasync'ed; concurrent writes share one write + one fdatasync (group commit). The log is
// rewritten as a snapshot when it grows (compaction), atomically via temp file + rename.
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from './clock.js';
import { acquireDirLock } from './data-dir-lock.js';
import type { LogEntry, SnapshotData } from './log-entry.js';
import { encodeHeader, encodeRecord, HEADER_SIZE, LOG_FILE, scanLog } from './log-format.js';
import { DEFAULT_LIMITS, MvccState, type StateLimits } from './mvcc-state.js';
import { StoreCore, type Journal } from './store-core.js';

/** Left behind only by a crash during compaction or creation; the log itself is authoritative. */
export const COMPACT_TEMP_FILE = `${LOG_FILE}.compact-tmp`;

export interface FileStoreOptions {
  clock?: Clock;
  logger?: Logger;
  limits?: Partial<StateLimits>;
  /** Compact once the log exceeds this many bytes (and twice its size after the last compaction). */
  compactAfterBytes?: number;
  /** …or once this many records were appended since the last compaction. */
  compactAfterRecords?: number;
}

export interface FileStoreStats {
  /** fdatasync calls on the log (one per group commit). */
  fsyncs: number;
  /** Transactions with an effect that became durable. */
  txns: number;
  compactions: number;
  logBytes: number;
}

/** What open() found and repaired, for logs and tests. */
export interface RecoveryReport {
  created: boolean;
  recordsReplayed: number;
  tornBytesDiscarded: number;
  removedCompactionTemp: boolean;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeDurably(path: string, data: Buffer): Promise<void> {
  const fh = await fsp.open(path, 'w', 0o600);
  try {
    await writeFully(fh, data, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` as `file` all-or-nothing: temp file, fsync, rename, fsync the directory. */
async function writeAtomically(dir: string, file: string, data: Buffer): Promise<void> {
  const tmp = join(dir, COMPACT_TEMP_FILE);
  await writeDurably(tmp, data);
  await fsp.rename(tmp, join(dir, file));
  await fsyncDir(dir);
}

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

class FileJournal implements Journal {
  readonly stats = { fsyncs: 0, compactions: 0 };
  private recordsSinceCompaction = 0;

  constructor(
    private readonly dir: string,
    private fh: FileHandle,
    public size: number,
    private baseSize: number,
    private readonly compactAfterBytes: number,
    private readonly compactAfterRecords: number,
    private readonly release: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  async append(entries: LogEntry[]): Promise<void> {
    const rec = encodeRecord({ k: 'batch', entries });
    await writeFully(this.fh, rec, this.size);
    this.size += rec.length;
    await this.fh.datasync();
    this.stats.fsyncs++;
    this.recordsSinceCompaction++;
  }

  async maintain(snapshot: () => SnapshotData): Promise<void> {
    // Growing the byte threshold with the base keeps a large state from compacting on every write.
    const overBytes = this.size > Math.max(this.compactAfterBytes, 2 * this.baseSize);
    if (overBytes || this.recordsSinceCompaction >= this.compactAfterRecords) await this.compact(snapshot());
  }

  async compact(state: SnapshotData): Promise<void> {
    const data = Buffer.concat([encodeHeader(), encodeRecord({ k: 'snapshot', state })]);
    const tmp = join(this.dir, COMPACT_TEMP_FILE);
    try {
      await writeDurably(tmp, data);
      await fsp.rename(tmp, join(this.dir, LOG_FILE));
    } catch (err) {
      // Nothing replaced the log, which is still complete: carry on with it.
      await fsp.rm(tmp, { force: true }).catch(() => {});
      this.log.warn({ err }, 'store log compaction failed; keeping the uncompacted log');
      return;
    }
    // From here the old handle points at an unlinked file, so a failure is fatal to the store
    // (the caller stops writes) rather than something to carry on from.
    const old = this.fh;
    this.fh = await fsp.open(join(this.dir, LOG_FILE), 'r+');
    await old.close().catch(() => {});
    await fsyncDir(this.dir);
    this.size = this.baseSize = data.length;
    this.recordsSinceCompaction = 0;
    this.stats.compactions++;
  }

  async close(): Promise<void> {
    await this.fh.close();
    await this.release();
  }
}

export class FileStore extends StoreCore {
  private constructor(
    state: MvccState,
    private readonly fileJournal: FileJournal,
    clock: Clock,
    logger: Logger,
    readonly dataDir: string,
    readonly recovery: RecoveryReport,
  ) {
    super(state, fileJournal, { clock, logger });
  }

  /**
   * Opens (creating if needed) the store in `dataDir`. Throws WEFT_E_STORE_LOCKED if another live
   * process has it, WEFT_E_STORE_FOREIGN / WEFT_E_STORE_CORRUPT if its log cannot be trusted.
   */
  static async open(dataDir: string, opts: FileStoreOptions = {}): Promise<FileStore> {
    const logger = opts.logger ?? createLogger('store');
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const lock = await acquireDirLock(dataDir);
    try {
      const { state, fh, size, report } = await recover(dataDir, limits, logger);
      const journal = new FileJournal(
        dataDir,
        fh,
        size,
        size,
        opts.compactAfterBytes ?? 4 * 1024 * 1024,
        opts.compactAfterRecords ?? 10_000,
        () => lock.release(),
        logger,
      );
      return new FileStore(state, journal, opts.clock ?? systemClock, logger, dataDir, report);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  stats(): FileStoreStats {
    return {
      fsyncs: this.fileJournal.stats.fsyncs,
      compactions: this.fileJournal.stats.compactions,
      txns: this.committedTxns,
      logBytes: this.fileJournal.size,
    };
  }

  /** Rewrites the log as one snapshot now, after every write already requested is durable. */
  compact(): Promise<void> {
    return this.exclusive(() => this.fileJournal.compact(this.state.snapshot()));
  }
}

async function recover(
  dir: string,
  limits: StateLimits,
  logger: Logger,
): Promise<{ state: MvccState; fh: FileHandle; size: number; report: RecoveryReport }> {
  const file = join(dir, LOG_FILE);
  const temp = join(dir, COMPACT_TEMP_FILE);
  const report: RecoveryReport = {
    created: false,
    recordsReplayed: 0,
    tornBytesDiscarded: 0,
    removedCompactionTemp: false,
  };
  let buf: Buffer | undefined;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR')
      throw new WeftError(
        'WEFT_E_STORE_FOREIGN',
        `${file} is a directory, not a Weft store log; move it away`,
      );
    if (code !== 'ENOENT') throw err;
  }
  const tempExists = await fsp.stat(temp).then(
    () => true,
    () => false,
  );
  if (tempExists) {
    // Whether complete or not, the temp file never became the log: the log (if any) is current.
    await fsp.rm(temp, { force: true });
    report.removedCompactionTemp = true;
    logger.warn({ file: temp }, 'removed the leftover of an interrupted store compaction');
  }

  let state = new MvccState(limits);
  if (buf === undefined) {
    await writeAtomically(dir, LOG_FILE, encodeHeader());
    report.created = true;
    return { state, fh: await fsp.open(file, 'r+'), size: HEADER_SIZE, report };
  }

  const scan = scanLog(buf, file);
  for (const { offset, payload } of scan.records) {
    try {
      if (payload.k === 'snapshot') state = MvccState.fromSnapshot(payload.state, limits);
      else for (const entry of payload.entries) state.apply(entry);
    } catch (err) {
      if (err instanceof WeftError) throw err;
      throw new WeftError(
        'WEFT_E_STORE_CORRUPT',
        `store log ${file} is damaged at byte offset ${offset}: its record does not follow from the ones ` +
          `before it (${(err as Error).message}). Restore the data directory from a backup, or move the file ` +
          'away to start with an empty store.',
      );
    }
    report.recordsReplayed++;
  }
  const fh = await fsp.open(file, 'r+');
  let savedTail: string | undefined;
  if (scan.tornBytes > 0) {
    // A crash tore the final write; its transactions were never acknowledged, so cutting is safe.
    // But a damaged length field looks the same as a torn write and would cut acknowledged
    // records too, so the cut bytes are kept beside the log first: nothing is ever destroyed.
    try {
      savedTail = `${file}.torn-${scan.validEnd}`;
      const tail = Buffer.alloc(scan.tornBytes);
      await fh.read(tail, 0, scan.tornBytes, scan.validEnd);
      await fsp.writeFile(savedTail, tail, { mode: 0o600 });
      await fh.truncate(scan.validEnd);
      await fh.datasync();
    } catch (err) {
      await fh.close();
      throw err;
    }
    report.tornBytesDiscarded = scan.tornBytes;
    logger.warn(
      { file, offset: scan.validEnd, bytes: scan.tornBytes, savedTail },
      'store log ended in a torn (unacknowledged) write; truncated it and kept the cut bytes in savedTail ' +
        '(delete it once the store is known good; if records are missing, a damaged length field may have ' +
        'cut them: keep it for recovery)',
    );
  }
  return { state, fh, size: scan.validEnd, report };
}
