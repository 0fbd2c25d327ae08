// An in-memory Store with the full contract (revisions, history, watch replay, leases), for unit
// tests of code that uses a store. Nothing is durable: its journal accepts every batch at once.
import { silentLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from './clock.js';
import { DEFAULT_LIMITS, MvccState, type StateLimits } from './mvcc-state.js';
import { StoreCore, type Journal } from './store-core.js';

export interface MemoryStoreOptions {
  /** Drives lease expiry; defaults to real, unref'ed timers. */
  clock?: Clock;
  logger?: Logger;
  limits?: Partial<StateLimits>;
}

const forgetfulJournal: Journal = {
  append: async () => {},
  close: async () => {},
};

export class MemoryStore extends StoreCore {
  constructor(opts: MemoryStoreOptions = {}) {
    super(new MvccState({ ...DEFAULT_LIMITS, ...opts.limits }), forgetfulJournal, {
      clock: opts.clock ?? systemClock,
      logger: opts.logger ?? silentLogger(),
    });
  }
}
