// The store module's public surface: the contract and the two embedded implementations.
export type * from './store.js';
export type { Clock } from './clock.js';
export { systemClock } from './clock.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export { FileStore, type FileStoreOptions, type FileStoreStats, type RecoveryReport } from './file-store.js';
export type { StateLimits } from './mvcc-state.js';
