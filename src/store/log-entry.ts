// The unit of change both stores commit: what a transaction, a lease grant or a lease revocation
// did, resolved to explicit effects (only effective ops, the revision they take). The memory
// store applies these directly; the file store also appends them to its log, and replaying the
// log applies the very same entries, so the two paths cannot disagree.
import type { KeyValue } from './store.js';

export type EntryOp =
  { type: 'put'; key: string; value: string; lease: number } | { type: 'delete'; key: string };

export type LogEntry =
  /** Ops that change something; `rev` is exactly one above the revision before. */
  | { t: 'txn'; rev: number; ops: EntryOp[] }
  | { t: 'grant'; id: number; ttl: number }
  /** Deletes every key bound to the lease at `rev` (unchanged revision when it had none). */
  | { t: 'revoke'; id: number; rev: number };

/** A deleted key's marker in its history. */
export interface Tombstone {
  key: string;
  deleted: number;
}

export type HistoryEntry = KeyValue | Tombstone;

export function isTombstone(e: HistoryEntry): e is Tombstone {
  return 'deleted' in e;
}

export function entryRevision(e: HistoryEntry): number {
  return isTombstone(e) ? e.deleted : e.modRevision;
}

/** Everything a compacted log starts from: current state plus retained history. */
export interface SnapshotData {
  revision: number;
  nextLeaseId: number;
  /** Gets at a revision below this, for a key without retained history, are unanswerable. */
  forgottenBelow: number;
  leases: { id: number; ttl: number }[];
  /** Every key with retained history (live or deleted), `trimmed` if older versions were dropped. */
  keys: { key: string; trimmed: boolean; entries: HistoryEntry[] }[];
}

// Shape checks for entries read back from disk. The CRC already rules out torn or flipped bytes;
// these catch a log written by a buggy or different program, so replay never runs on garbage.

function isInt(x: unknown, min: number): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= min;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function bad(what: string): never {
  throw new Error(what);
}

function parseOp(x: unknown): EntryOp {
  if (!isObj(x) || typeof x.key !== 'string' || x.key === '') bad('op without a key');
  if (x.type === 'put') {
    if (typeof x.value !== 'string' || !isInt(x.lease, 0)) bad(`malformed put of "${x.key}"`);
    return { type: 'put', key: x.key, value: x.value, lease: x.lease };
  }
  if (x.type === 'delete') return { type: 'delete', key: x.key };
  return bad(`unknown op type ${JSON.stringify(x.type)}`);
}

export function parseEntry(x: unknown): LogEntry {
  if (!isObj(x)) return bad('entry is not an object');
  switch (x.t) {
    case 'txn':
      if (!isInt(x.rev, 1) || !Array.isArray(x.ops) || x.ops.length === 0) bad('malformed txn entry');
      return { t: 'txn', rev: x.rev, ops: x.ops.map(parseOp) };
    case 'grant':
      if (!isInt(x.id, 1) || typeof x.ttl !== 'number' || !(x.ttl > 0)) bad('malformed lease grant');
      return { t: 'grant', id: x.id, ttl: x.ttl };
    case 'revoke':
      if (!isInt(x.id, 1) || !isInt(x.rev, 0)) bad('malformed lease revoke');
      return { t: 'revoke', id: x.id, rev: x.rev };
    default:
      return bad(`unknown entry type ${JSON.stringify(x.t)}`);
  }
}

function parseHistoryEntry(key: string, x: unknown): HistoryEntry {
  if (!isObj(x) || x.key !== key) return bad(`history entry of "${key}" names another key`);
  if ('deleted' in x) {
    if (!isInt(x.deleted, 1)) bad(`malformed tombstone of "${key}"`);
    return { key, deleted: x.deleted as number };
  }
  if (
    typeof x.value !== 'string' ||
    !isInt(x.createRevision, 1) ||
    !isInt(x.modRevision, 1) ||
    !isInt(x.version, 1) ||
    !isInt(x.lease, 0)
  ) {
    bad(`malformed history entry of "${key}"`);
  }
  return {
    key,
    value: x.value as string,
    createRevision: x.createRevision as number,
    modRevision: x.modRevision as number,
    version: x.version as number,
    lease: x.lease as number,
  };
}

export function parseSnapshot(x: unknown): SnapshotData {
  if (
    !isObj(x) ||
    !isInt(x.revision, 0) ||
    !isInt(x.nextLeaseId, 1) ||
    !isInt(x.forgottenBelow, 0) ||
    !Array.isArray(x.leases) ||
    !Array.isArray(x.keys)
  ) {
    return bad('malformed snapshot');
  }
  const leases = x.leases.map((l: unknown) => {
    if (!isObj(l) || !isInt(l.id, 1) || typeof l.ttl !== 'number' || !(l.ttl > 0)) bad('malformed lease');
    return { id: l.id as number, ttl: l.ttl as number };
  });
  const keys = x.keys.map((k: unknown) => {
    if (!isObj(k) || typeof k.key !== 'string' || k.key === '' || !Array.isArray(k.entries)) {
      return bad('malformed key history');
    }
    const key = k.key;
    if (k.entries.length === 0) bad(`empty history for "${key}"`);
    return {
      key,
      trimmed: k.trimmed === true,
      entries: k.entries.map((e: unknown) => parseHistoryEntry(key, e)),
    };
  });
  return { revision: x.revision, nextLeaseId: x.nextLeaseId, forgottenBelow: x.forgottenBelow, leases, keys };
}
