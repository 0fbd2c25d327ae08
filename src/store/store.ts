// The store contract. It is shaped after etcd's v3 model (one global revision, per-key
// create/mod revisions, transactions guarded by compare-on-modRevision, watches from a revision,
// leases with TTL) so that the embedded file store and an etcd-backed store are interchangeable.
// Values are opaque strings (the control plane stores JSON).

export interface KeyValue {
  key: string;
  value: string;
  /** Store revision at which this key was created (since its last deletion). */
  createRevision: number;
  /** Store revision of the last change to this key. Doubles as the resource's resourceVersion. */
  modRevision: number;
  /** Number of changes since creation, 1 for a new key. */
  version: number;
  /** Lease the key is bound to; the key is deleted when the lease expires. 0 = none. */
  lease: number;
}

export type TxnOp =
  { type: 'put'; key: string; value: string; lease?: number } | { type: 'delete'; key: string };

/**
 * A guard on a transaction. `modRevision: 0` means "the key must not exist"; any other number
 * means "the key must exist with exactly this modRevision".
 */
export interface TxnCondition {
  key: string;
  modRevision: number;
}

export interface TxnResult {
  /** The store revision after the transaction (unchanged if it had no effective op). */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prev?: KeyValue }
  | { type: 'delete'; key: string; revision: number; prev?: KeyValue };

export interface WatchOptions {
  /** Deliver every event with revision >= fromRevision, then live ones. Default: live only. */
  fromRevision?: number;
}

export interface Watcher {
  cancel(): void;
}

/**
 * Errors (all `WeftError`): a failed condition → WEFT_E_CONFLICT (with the key in the message);
 * a watch/get from a compacted revision → WEFT_E_COMPACTED; an unknown lease →
 * WEFT_E_LEASE_NOT_FOUND; any call after close() → WEFT_E_STORE_CLOSED.
 */
export interface Store {
  /** Current revision of the whole store. */
  revision(): number;

  /** The key's value, now or at an earlier revision still in history. */
  get(key: string, opts?: { revision?: number }): Promise<KeyValue | undefined>;

  /** Every key starting with `prefix`, sorted by key, with the revision the list was read at. */
  list(prefix: string): Promise<{ items: KeyValue[]; revision: number }>;

  /** Past and present versions of one key still in history, oldest first. */
  history(key: string): Promise<KeyValue[]>;

  /**
   * Apply every op atomically if every condition holds, else apply none and throw
   * WEFT_E_CONFLICT. Resolves only once the change is durable (for the file store: fsynced).
   * All ops of one transaction share one new revision. Deleting a missing key is a no-op.
   */
  txn(ops: TxnOp[], conditions?: TxnCondition[]): Promise<TxnResult>;

  /**
   * Calls `onEvent` for every change under `prefix`, in revision order, each event exactly once.
   * Events of one transaction are delivered together (same revision) before the next one's.
   */
  watch(prefix: string, onEvent: (events: WatchEvent[]) => void, opts?: WatchOptions): Watcher;

  /** A new lease; keys put with it are deleted (one transaction) when it expires or is revoked. */
  grantLease(ttlSeconds: number): Promise<{ id: number; ttlSeconds: number }>;
  /** Restart the lease's TTL countdown. */
  keepAlive(id: number): Promise<void>;
  revokeLease(id: number): Promise<void>;

  close(): Promise<void>;
}
