// The Store behaviour both embedded stores share: planning requests into log entries, the commit
// pipeline (group commit through a Journal), applying committed entries to the MvccState, watch
// fan-out, and lease timers. A store differs only in its Journal: the memory store's forgets, the
// file store's appends and fsyncs.
//
// Pipeline: a request is planned at once (conditions checked against the planner, which already
// includes every earlier request still in the queue), then queued. One writer drains the queue:
// everything queued while the previous write was in flight goes to the journal in one append,
// and only once that append is durable are its entries applied to the readable state, watchers
// notified and the callers' promises resolved. Reads therefore never show a change that a crash
// could take back.
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Clock } from './clock.js';
import type { LogEntry, SnapshotData } from './log-entry.js';
import type { MvccState } from './mvcc-state.js';
import type {
  KeyValue,
  Store,
  TxnCondition,
  TxnOp,
  TxnResult,
  WatchEvent,
  WatchOptions,
  Watcher,
} from './store.js';
import { leaseNotFound, TxnPlanner } from './txn-planner.js';
import { WatchHub } from './watch-hub.js';

export interface Journal {
  /** Makes the entries durable, in order; resolves only once they are. */
  append(entries: LogEntry[]): Promise<void>;
  /** Runs between appends with nothing in flight (the file store compacts here). */
  maintain?(snapshot: () => SnapshotData): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  entry: LogEntry | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Task {
  run: () => Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface CoreOptions {
  clock: Clock;
  logger: Logger;
}

export class StoreCore implements Store {
  private readonly planner: TxnPlanner;
  private readonly hub: WatchHub;
  private readonly leaseTimers = new Map<number, () => void>();
  private queue: Pending[] = [];
  private tasks: Task[] = [];
  private writing = false;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private failure: WeftError | undefined;
  protected committedTxns = 0;

  protected constructor(
    protected readonly state: MvccState,
    private readonly journal: Journal,
    protected readonly opts: CoreOptions,
  ) {
    this.planner = new TxnPlanner(state);
    this.hub = new WatchHub(opts.logger);
    // Leases restored from disk get a full TTL, as etcd grants after a leader change: the holder
    // could not keep them alive while the store was down.
    for (const id of state.leases.keys()) this.armLease(id);
  }

  // ---- reads (committed state only)

  revision(): number {
    this.assertOpen();
    return this.state.revision;
  }

  async get(key: string, opts?: { revision?: number }): Promise<KeyValue | undefined> {
    this.assertOpen();
    return this.state.get(key, opts?.revision);
  }

  async list(prefix: string): Promise<{ items: KeyValue[]; revision: number }> {
    this.assertOpen();
    return { items: this.state.list(prefix), revision: this.state.revision };
  }

  async history(key: string): Promise<KeyValue[]> {
    this.assertOpen();
    return this.state.history(key);
  }

  watch(prefix: string, onEvent: (events: WatchEvent[]) => void, opts?: WatchOptions): Watcher {
    this.assertOpen();
    const from = opts?.fromRevision;
    const backlog = from !== undefined && from > 0 ? this.state.eventsSince(from) : [];
    return this.hub.add(prefix, onEvent, from ?? 0, backlog);
  }

  // ---- writes

  async txn(ops: TxnOp[], conditions: TxnCondition[] = []): Promise<TxnResult> {
    this.assertWritable();
    if (!Array.isArray(ops) || !Array.isArray(conditions)) {
      throw new WeftError('WEFT_E_BAD_REQUEST', 'txn takes an array of ops and an array of conditions');
    }
    let planned;
    try {
      planned = this.planner.planTxn(ops, conditions);
    } catch (err) {
      // A conflict was judged against writes that may not be durable yet; report it only once
      // they are, so nobody hears of a state that a crash could still take back.
      await this.submit(null);
      throw err;
    }
    await this.submit(planned.entry);
    return { revision: planned.revision };
  }

  async grantLease(ttlSeconds: number): Promise<{ id: number; ttlSeconds: number }> {
    this.assertWritable();
    const entry = this.planner.planGrant(ttlSeconds);
    await this.submit(entry);
    return { id: entry.id, ttlSeconds: entry.ttl };
  }

  async keepAlive(id: number): Promise<void> {
    this.assertWritable();
    if (!this.planner.hasLease(id)) throw leaseNotFound(id);
    // A lease whose grant is not durable yet has no timer; it gets its full TTL when it is.
    if (this.leaseTimers.has(id)) this.armLease(id);
  }

  async revokeLease(id: number): Promise<void> {
    this.assertWritable();
    await this.submit(this.planner.planRevoke(id));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.idle();
    for (const cancel of this.leaseTimers.values()) cancel();
    this.leaseTimers.clear();
    this.hub.closeAll();
    await this.journal.close();
  }

  // ---- for subclasses

  /** Runs `run` in the writer, between appends, with every earlier request durable and applied. */
  protected exclusive(run: () => Promise<void>): Promise<void> {
    this.assertWritable();
    return new Promise((resolve, reject) => {
      this.tasks.push({ run, resolve, reject });
      this.kick();
    });
  }

  // ---- pipeline

  private submit(entry: LogEntry | null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    // Started in a microtask so that requests made in the same tick share the first write.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (!this.failure && (this.queue.length > 0 || this.tasks.length > 0)) {
        const tasks = this.tasks;
        this.tasks = [];
        for (const t of tasks) {
          try {
            await t.run();
            t.resolve();
          } catch (err) {
            t.reject(err as Error);
          }
        }
        if (this.queue.length === 0) continue;
        const batch = this.queue;
        this.queue = [];
        const entries = batch.flatMap((p) => (p.entry ? [p.entry] : []));
        try {
          if (entries.length > 0) await this.journal.append(entries);
        } catch (err) {
          this.fail(err as Error, batch);
          return;
        }
        for (const p of batch) {
          if (p.entry) this.applyCommitted(p.entry);
          p.resolve();
        }
        if (this.journal.maintain) {
          try {
            await this.journal.maintain(() => this.state.snapshot());
          } catch (err) {
            this.fail(err as Error, []);
            return;
          }
        }
      }
    } finally {
      this.writing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private applyCommitted(entry: LogEntry): void {
    const applied = this.state.apply(entry);
    if (entry.t === 'txn') this.committedTxns++;
    if (entry.t === 'grant') this.armLease(entry.id);
    if (entry.t === 'revoke') {
      this.leaseTimers.get(entry.id)?.();
      this.leaseTimers.delete(entry.id);
    }
    this.hub.publish(applied);
  }

  /**
   * After a failed append nobody knows what reached the disk (and the planner already counts the
   * lost entries), so the store stops taking writes; reopening replays exactly what is durable.
   */
  private fail(err: Error, batch: Pending[]): void {
    this.failure = new WeftError(
      'WEFT_E_UNAVAILABLE',
      `the store could not write its log (${err.message}); it accepts no more writes. ` +
        'Fix the cause (disk full? permissions?) and restart: acknowledged writes are safe on disk.',
    );
    this.opts.logger.error({ err }, 'store write failed; store is now read-only until restarted');
    for (const p of [...batch, ...this.queue]) p.reject(this.failure);
    for (const t of this.tasks) t.reject(this.failure);
    this.queue = [];
    this.tasks = [];
  }

  private idle(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private armLease(id: number): void {
    this.leaseTimers.get(id)?.();
    const ttl = this.state.leases.get(id)?.ttl;
    if (ttl === undefined) return;
    this.leaseTimers.set(
      id,
      this.opts.clock.setTimer(() => this.expire(id), ttl * 1000),
    );
  }

  private expire(id: number): void {
    this.leaseTimers.delete(id);
    if (this.closed || this.failure || !this.planner.hasLease(id)) return;
    this.submit(this.planner.planRevoke(id)).catch((err: unknown) => {
      this.opts.logger.warn({ err, lease: id }, 'could not delete the keys of an expired lease');
    });
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.failure) throw this.failure;
  }
}

function closedError(): WeftError {
  return new WeftError('WEFT_E_STORE_CLOSED', 'the store is closed; open it again to use it');
}
