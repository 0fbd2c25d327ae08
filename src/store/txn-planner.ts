// Decides what a request does before it is durable. With group commit, a transaction's conditions
// must be checked against the state as it will be once every earlier, still unwritten transaction
// has been applied; this planner is that future state, reduced to what decisions need (each key's
// modRevision and lease, each lease's keys). It runs ahead of the committed MvccState and turns
// requests into `LogEntry`s, which the committed state later applies verbatim.
import { WeftError } from '../errors.js';
import type { EntryOp, LogEntry } from './log-entry.js';
import type { MvccState } from './mvcc-state.js';
import type { TxnCondition, TxnOp } from './store.js';

interface KeyMeta {
  mod: number;
  lease: number;
}

export class TxnPlanner {
  private revision: number;
  private nextLeaseId: number;
  private readonly keys = new Map<string, KeyMeta>();
  private readonly leases = new Map<number, Set<string>>();

  constructor(state: MvccState) {
    this.revision = state.revision;
    this.nextLeaseId = state.nextLeaseId;
    for (const id of state.leases.keys()) this.leases.set(id, new Set());
    for (const kv of state.liveKeys()) {
      this.keys.set(kv.key, { mod: kv.modRevision, lease: kv.lease });
      if (kv.lease !== 0) this.leases.get(kv.lease)?.add(kv.key);
    }
  }

  hasLease(id: number): boolean {
    return this.leases.has(id);
  }

  /** The entry to commit (null when nothing changes) and the revision the caller will see. */
  planTxn(ops: TxnOp[], conditions: TxnCondition[]): { entry: LogEntry | null; revision: number } {
    for (const c of conditions) {
      if (typeof c?.key !== 'string' || !Number.isSafeInteger(c.modRevision) || c.modRevision < 0) {
        throw new WeftError('WEFT_E_BAD_REQUEST', `malformed txn condition ${JSON.stringify(c)}`);
      }
      const cur = this.keys.get(c.key);
      const ok = c.modRevision === 0 ? cur === undefined : cur?.mod === c.modRevision;
      if (!ok) {
        const want = c.modRevision === 0 ? 'to be absent' : `at modRevision ${c.modRevision}`;
        const found = cur ? `it is at modRevision ${cur.mod}` : 'it does not exist';
        throw new WeftError(
          'WEFT_E_CONFLICT',
          `txn condition failed: expected key "${c.key}" ${want}, but ${found}; re-read it and retry`,
        );
      }
    }
    const seen = new Set<string>();
    const effective: EntryOp[] = [];
    for (const op of ops) {
      if (typeof op?.key !== 'string' || op.key === '') {
        throw new WeftError('WEFT_E_BAD_REQUEST', 'every txn op needs a non-empty key');
      }
      // One op per key, as etcd requires: otherwise the shared revision would hide the order.
      if (seen.has(op.key)) throw new WeftError('WEFT_E_BAD_REQUEST', `txn touches key "${op.key}" twice`);
      seen.add(op.key);
      if (op.type === 'put') {
        if (typeof op.value !== 'string') {
          throw new WeftError('WEFT_E_BAD_REQUEST', `put of "${op.key}" needs a string value`);
        }
        const lease = op.lease ?? 0;
        if (lease !== 0 && !this.leases.has(lease)) {
          throw new WeftError(
            'WEFT_E_LEASE_NOT_FOUND',
            `lease ${lease} for key "${op.key}" does not exist (expired or revoked); grant a new one`,
          );
        }
        effective.push({ type: 'put', key: op.key, value: op.value, lease });
      } else if (op.type === 'delete') {
        if (this.keys.has(op.key)) effective.push({ type: 'delete', key: op.key });
      } else {
        throw new WeftError(
          'WEFT_E_BAD_REQUEST',
          `unknown txn op type ${JSON.stringify((op as TxnOp).type)}`,
        );
      }
    }
    if (effective.length === 0) return { entry: null, revision: this.revision };
    const entry: LogEntry = { t: 'txn', rev: this.revision + 1, ops: effective };
    this.apply(entry);
    return { entry, revision: entry.rev };
  }

  planGrant(ttlSeconds: number): LogEntry & { t: 'grant' } {
    if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
      throw new WeftError(
        'WEFT_E_BAD_REQUEST',
        `lease TTL must be a positive number of seconds, got ${ttlSeconds}`,
      );
    }
    const entry = { t: 'grant' as const, id: this.nextLeaseId, ttl: ttlSeconds };
    this.apply(entry);
    return entry;
  }

  planRevoke(id: number): LogEntry & { t: 'revoke' } {
    const keys = this.leases.get(id);
    if (!keys) throw leaseNotFound(id);
    const entry = { t: 'revoke' as const, id, rev: keys.size > 0 ? this.revision + 1 : this.revision };
    this.apply(entry);
    return entry;
  }

  private apply(entry: LogEntry): void {
    switch (entry.t) {
      case 'grant':
        this.leases.set(entry.id, new Set());
        this.nextLeaseId = entry.id + 1;
        return;
      case 'revoke':
        for (const key of this.leases.get(entry.id) ?? []) this.keys.delete(key);
        this.leases.delete(entry.id);
        this.revision = entry.rev;
        return;
      case 'txn':
        for (const op of entry.ops) {
          const prev = this.keys.get(op.key);
          if (prev && prev.lease !== 0) this.leases.get(prev.lease)?.delete(op.key);
          if (op.type === 'put') {
            this.keys.set(op.key, { mod: entry.rev, lease: op.lease });
            if (op.lease !== 0) this.leases.get(op.lease)?.add(op.key);
          } else {
            this.keys.delete(op.key);
          }
        }
        this.revision = entry.rev;
        return;
    }
  }
}

export function leaseNotFound(id: number): WeftError {
  return new WeftError(
    'WEFT_E_LEASE_NOT_FOUND',
    `lease ${id} does not exist (expired or revoked); grant a new one and re-put its keys`,
  );
}
