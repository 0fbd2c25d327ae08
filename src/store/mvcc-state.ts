// The committed state both stores serve reads from: current keys, bounded per-key history
// (with tombstones of deleted keys kept for a while), a bounded log of past watch events, and the
// lease table. It only applies already-decided `LogEntry`s and never does I/O or timing; which
// changes happen, and when they are durable, is decided by the caller.
import { WeftError } from '../errors.js';
import type { KeyValue, WatchEvent } from './store.js';
import {
  entryRevision,
  isTombstone,
  type HistoryEntry,
  type LogEntry,
  type SnapshotData,
  type Tombstone,
} from './log-entry.js';

export interface StateLimits {
  /** Versions (and tombstones) kept per key. */
  historyPerKey: number;
  /** How many past revisions of watch events stay replayable. */
  eventLogRevisions: number;
  /** How many revisions a deleted key's history outlives its deletion. */
  tombstoneRevisions: number;
}

export const DEFAULT_LIMITS: StateLimits = {
  historyPerKey: 20,
  eventLogRevisions: 10_000,
  tombstoneRevisions: 10_000,
};

interface KeyHistory {
  entries: HistoryEntry[];
  /** Older entries were dropped, so a revision before entries[0] cannot be answered. */
  trimmed: boolean;
}

export interface LeaseRecord {
  ttl: number;
  keys: Set<string>;
}

/** The events one applied entry produced; empty for lease grants and no-key revocations. */
export interface Applied {
  revision: number;
  events: WatchEvent[];
}

/** A FIFO over an array that drops from the front in O(1) amortised. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  push(x: T): void {
    this.items.push(x);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
  *from(index: number): Iterable<T> {
    for (let i = this.head + index; i < this.items.length; i++) yield this.items[i] as T;
  }
  get length(): number {
    return this.items.length - this.head;
  }
}

export class MvccState {
  revision = 0;
  nextLeaseId = 1;
  /** Every watch event with revision >= eventsFrom is still in `events`. */
  eventsFrom = 1;
  private forgottenBelow = 0;
  private readonly live = new Map<string, KeyValue>();
  private readonly histories = new Map<string, KeyHistory>();
  private readonly tombstones = new Fifo<Tombstone>();
  private readonly events = new Fifo<Applied>();
  readonly leases = new Map<number, LeaseRecord>();

  constructor(readonly limits: StateLimits = DEFAULT_LIMITS) {}

  // ---- reads

  current(key: string): KeyValue | undefined {
    return this.live.get(key);
  }

  liveKeys(): IterableIterator<KeyValue> {
    return this.live.values();
  }

  get(key: string, revision?: number): KeyValue | undefined {
    if (revision === undefined || revision === this.revision) return this.live.get(key);
    if (!Number.isSafeInteger(revision) || revision < 1 || revision > this.revision) {
      throw new WeftError(
        'WEFT_E_BAD_REQUEST',
        `cannot read "${key}" at revision ${revision}: revisions run from 1 to the current ${this.revision}`,
      );
    }
    const h = this.histories.get(key);
    let found: HistoryEntry | undefined;
    for (const e of h?.entries ?? []) {
      if (entryRevision(e) > revision) break;
      found = e;
    }
    if (found === undefined) {
      if (h?.trimmed || revision < this.forgottenBelow) throw compacted(`"${key}" at revision ${revision}`);
      return undefined;
    }
    return isTombstone(found) ? undefined : found;
  }

  list(prefix: string): KeyValue[] {
    const out: KeyValue[] = [];
    for (const kv of this.live.values()) if (kv.key.startsWith(prefix)) out.push(kv);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  history(key: string): KeyValue[] {
    return (this.histories.get(key)?.entries ?? []).filter((e): e is KeyValue => !isTombstone(e));
  }

  /** Past events from `from` on, oldest first; throws WEFT_E_COMPACTED if some were dropped. */
  eventsSince(from: number): Applied[] {
    if (from < this.eventsFrom) {
      throw compacted(`watch from revision ${from} (the oldest replayable revision is ${this.eventsFrom})`);
    }
    const out: Applied[] = [];
    for (const a of this.events.from(0)) if (a.revision >= from) out.push(a);
    return out;
  }

  // ---- writes

  /** Applies a decided entry. Throws a plain Error if it does not fit this state (a bad log). */
  apply(entry: LogEntry): Applied {
    switch (entry.t) {
      case 'grant':
        if (this.leases.has(entry.id) || entry.id < this.nextLeaseId) {
          throw new Error(`lease ${entry.id} granted twice`);
        }
        this.leases.set(entry.id, { ttl: entry.ttl, keys: new Set() });
        this.nextLeaseId = entry.id + 1;
        return { revision: this.revision, events: [] };
      case 'revoke': {
        const lease = this.leases.get(entry.id);
        if (!lease) throw new Error(`revoke of unknown lease ${entry.id}`);
        const keys = [...lease.keys].sort();
        const expected = keys.length > 0 ? this.revision + 1 : this.revision;
        if (entry.rev !== expected) throw new Error(`revoke at revision ${entry.rev}, expected ${expected}`);
        this.leases.delete(entry.id);
        if (keys.length === 0) return { revision: this.revision, events: [] };
        return this.commit(
          entry.rev,
          keys.map((key) => this.deleteKey(key, entry.rev)),
        );
      }
      case 'txn': {
        if (entry.rev !== this.revision + 1) {
          throw new Error(`txn at revision ${entry.rev} follows revision ${this.revision}`);
        }
        const events: WatchEvent[] = [];
        for (const op of entry.ops) {
          events.push(
            op.type === 'put'
              ? this.putKey(op.key, op.value, op.lease, entry.rev)
              : this.deleteKey(op.key, entry.rev),
          );
        }
        return this.commit(entry.rev, events);
      }
    }
  }

  private putKey(key: string, value: string, lease: number, rev: number): WatchEvent {
    const prev = this.live.get(key);
    if (lease !== 0 && !this.leases.has(lease))
      throw new Error(`put of "${key}" with unknown lease ${lease}`);
    if (prev && prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(key);
    if (lease !== 0) this.leases.get(lease)?.keys.add(key);
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
      version: prev ? prev.version + 1 : 1,
      lease,
    };
    this.live.set(key, kv);
    this.remember(kv);
    return prev ? { type: 'put', kv, prev } : { type: 'put', kv };
  }

  private deleteKey(key: string, rev: number): WatchEvent {
    const prev = this.live.get(key);
    if (!prev) throw new Error(`delete of missing key "${key}"`);
    if (prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(key);
    this.live.delete(key);
    const t: Tombstone = { key, deleted: rev };
    this.remember(t);
    this.tombstones.push(t);
    return { type: 'delete', key, revision: rev, prev };
  }

  private remember(e: HistoryEntry): void {
    let h = this.histories.get(e.key);
    if (!h) this.histories.set(e.key, (h = { entries: [], trimmed: false }));
    h.entries.push(e);
    if (h.entries.length > this.limits.historyPerKey) {
      h.entries.splice(0, h.entries.length - this.limits.historyPerKey);
      h.trimmed = true;
    }
  }

  private commit(revision: number, events: WatchEvent[]): Applied {
    this.revision = revision;
    const applied = { revision, events };
    this.events.push(applied);
    for (
      let a = this.events.peek();
      a && a.revision <= revision - this.limits.eventLogRevisions;
      a = this.events.peek()
    ) {
      this.events.shift();
      this.eventsFrom = a.revision + 1;
    }
    // A deleted key's history goes once its deletion is old enough, unless it came back since.
    for (
      let t = this.tombstones.peek();
      t && t.deleted <= revision - this.limits.tombstoneRevisions;
      t = this.tombstones.peek()
    ) {
      this.tombstones.shift();
      const h = this.histories.get(t.key);
      if (h && h.entries[h.entries.length - 1] === t) {
        this.histories.delete(t.key);
        this.forgottenBelow = Math.max(this.forgottenBelow, t.deleted + 1);
      }
    }
    return applied;
  }

  // ---- snapshots (the file store's compacted log)

  snapshot(): SnapshotData {
    return {
      revision: this.revision,
      nextLeaseId: this.nextLeaseId,
      forgottenBelow: this.forgottenBelow,
      leases: [...this.leases].map(([id, l]) => ({ id, ttl: l.ttl })),
      keys: [...this.histories].map(([key, h]) => ({ key, trimmed: h.trimmed, entries: h.entries })),
    };
  }

  /** Rebuilds a state from a snapshot; watch events before it are gone (WEFT_E_COMPACTED). */
  static fromSnapshot(s: SnapshotData, limits: StateLimits = DEFAULT_LIMITS): MvccState {
    const st = new MvccState(limits);
    st.revision = s.revision;
    st.nextLeaseId = s.nextLeaseId;
    st.forgottenBelow = s.forgottenBelow;
    st.eventsFrom = s.revision + 1;
    for (const l of s.leases) {
      if (l.id >= s.nextLeaseId || st.leases.has(l.id))
        throw new Error(`snapshot lease ${l.id} is inconsistent`);
      st.leases.set(l.id, { ttl: l.ttl, keys: new Set() });
    }
    const tombstones: Tombstone[] = [];
    for (const k of s.keys) {
      let last = 0;
      for (const e of k.entries) {
        const r = entryRevision(e);
        if (r <= last || r > s.revision) throw new Error(`snapshot history of "${k.key}" is out of order`);
        last = r;
      }
      if (st.histories.has(k.key)) throw new Error(`snapshot lists "${k.key}" twice`);
      st.histories.set(k.key, { entries: k.entries, trimmed: k.trimmed });
      const top = k.entries[k.entries.length - 1] as HistoryEntry;
      if (isTombstone(top)) {
        tombstones.push(top);
      } else {
        if (top.lease !== 0) {
          const lease = st.leases.get(top.lease);
          if (!lease) throw new Error(`"${k.key}" is bound to unknown lease ${top.lease}`);
          lease.keys.add(k.key);
        }
        st.live.set(k.key, top);
      }
    }
    for (const t of tombstones.sort((a, b) => a.deleted - b.deleted)) st.tombstones.push(t);
    return st;
  }
}

function compacted(what: string): WeftError {
  return new WeftError(
    'WEFT_E_COMPACTED',
    `${what} is no longer in the store's history; re-read the current state (list) and watch from its revision`,
  );
}
