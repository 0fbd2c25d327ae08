// Fans committed changes out to watchers. Each watcher has its own queue drained in a microtask,
// so callbacks never run inside a commit (a callback may itself write to the store), a replayed
// backlog is always delivered before live events, and one slow or throwing watcher cannot reorder
// or lose another's events.
import type { Logger } from '../log.js';
import type { Applied } from './mvcc-state.js';
import type { WatchEvent, Watcher } from './store.js';

interface Subscription {
  prefix: string;
  onEvent: (events: WatchEvent[]) => void;
  /** Deliver nothing older: a watch may start from a revision that is still in the future. */
  fromRevision: number;
  queue: WatchEvent[][];
  scheduled: boolean;
  cancelled: boolean;
}

function eventKey(e: WatchEvent): string {
  return e.type === 'put' ? e.kv.key : e.key;
}

export class WatchHub {
  private readonly subs = new Set<Subscription>();

  constructor(private readonly log: Logger) {}

  add(
    prefix: string,
    onEvent: (events: WatchEvent[]) => void,
    fromRevision: number,
    backlog: Applied[],
  ): Watcher {
    const sub: Subscription = {
      prefix,
      onEvent,
      fromRevision,
      queue: [],
      scheduled: false,
      cancelled: false,
    };
    this.subs.add(sub);
    for (const a of backlog) this.enqueue(sub, a);
    return {
      cancel: () => {
        sub.cancelled = true;
        sub.queue = [];
        this.subs.delete(sub);
      },
    };
  }

  /** One committed transaction's events; delivered together to each interested watcher. */
  publish(applied: Applied): void {
    if (applied.events.length === 0) return;
    for (const sub of this.subs) this.enqueue(sub, applied);
  }

  closeAll(): void {
    for (const sub of this.subs) {
      sub.cancelled = true;
      sub.queue = [];
    }
    this.subs.clear();
  }

  private enqueue(sub: Subscription, applied: Applied): void {
    if (applied.revision < sub.fromRevision) return;
    const mine = applied.events.filter((e) => eventKey(e).startsWith(sub.prefix));
    if (mine.length === 0) return;
    sub.queue.push(mine);
    if (sub.scheduled) return;
    sub.scheduled = true;
    queueMicrotask(() => this.drain(sub));
  }

  private drain(sub: Subscription): void {
    sub.scheduled = false;
    while (!sub.cancelled && sub.queue.length > 0) {
      const batch = sub.queue.shift() as WatchEvent[];
      try {
        sub.onEvent(batch);
      } catch (err) {
        this.log.error({ err, prefix: sub.prefix }, 'store watcher callback threw; event delivery continues');
      }
    }
  }
}
