// A sidecar's registration: its Workload, bound to a lease that it keeps alive. If the sidecar
// dies, the lease expires and the control plane removes the endpoint from every proxy; on a
// clean shutdown it revokes the lease at once. Control plane outages are ridden out: keepalives
// are retried, and a lease found gone (expired while we could not reach it) is replaced by a
// fresh registration.

import { EventEmitter } from 'node:events';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';

export interface RegistrationOptions {
  /** A call to the control plane's workload API, authenticated as this workload. */
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: unknown }>;
  workload: object;
  ttlSeconds: number;
  logger: Logger;
}

interface ApiError {
  code?: string;
  message?: string;
}

export class Registration extends EventEmitter<{ registered: [number]; lost: [string] }> {
  private lease = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set by the first stop(): its deregistration, which later calls wait for. */
  private stopping: Promise<void> | undefined;
  /** A keepalive or re-registration under way: stop() waits for it, so none lands after. */
  private inflight: Promise<void> | undefined;
  /** Ends start()'s wait between attempts early: stop() calls it. */
  private wake: (() => void) | undefined;

  constructor(private readonly opts: RegistrationOptions) {
    super();
  }

  get leaseId(): number {
    return this.lease;
  }

  /**
   * Registers (retrying until the control plane answers), then keeps the lease alive. Resolves
   * only once registered: stopped first (stop(), or `signal` aborted, even mid-wait between
   * attempts), it rejects with WEFT_E_UNAVAILABLE at once.
   */
  async start(signal?: AbortSignal): Promise<void> {
    let delay = 200;
    for (;;) {
      if (this.stopped || signal?.aborted)
        throw new WeftError('WEFT_E_UNAVAILABLE', 'stopped before the workload was registered');
      try {
        const op = this.register();
        this.inflight = op.catch(() => undefined);
        await op;
        // Registered just as it was told to stop: stop() revokes this lease once the attempt
        // is done (it waits for it), so it is not ready either.
        if (this.stopped || signal?.aborted) continue;
        break;
      } catch (e) {
        if (signal?.aborted || this.stopped) continue;
        this.opts.logger.warn(
          { err: (e as Error).message },
          'cannot register with the control plane yet; retrying',
        );
        await this.pause(delay, signal);
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.schedule();
  }

  /** Waits `ms`, or less if the registration is stopped or `signal` aborts meanwhile. */
  private pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  private async register(): Promise<void> {
    const { call, ttlSeconds, workload } = this.opts;
    const lease = await call('POST', '/api/v1/leases', { ttlSeconds });
    if (lease.status !== 200)
      throw new Error(`lease: ${lease.status} ${(lease.json as ApiError).message ?? ''}`);
    const id = (lease.json as { id: number }).id;
    const applied = await call('POST', `/api/v1/apply?lease=${id}`, { documents: [workload] });
    if (applied.status !== 200) {
      const err = applied.json as ApiError;
      throw new Error(
        `registering the workload failed: ${applied.status} ${err.code ?? ''} ${err.message ?? ''}`,
      );
    }
    const previous = this.lease;
    this.lease = id;
    this.opts.logger.info({ lease: id }, 'workload registered');
    this.emit('registered', id);
    if (previous !== 0 && previous !== id) {
      await call('DELETE', `/api/v1/leases/${previous}`).catch(() => undefined);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    // A third of the TTL: two keepalives may be lost before the lease expires.
    this.timer = setTimeout(
      () => {
        this.inflight = this.keepAlive().finally(() => (this.inflight = undefined));
      },
      Math.max(200, (this.opts.ttlSeconds * 1000) / 3),
    );
    this.timer.unref();
  }

  private async keepAlive(): Promise<void> {
    try {
      const res = await this.opts.call('POST', `/api/v1/leases/${this.lease}/keepalive`);
      if (this.stopped) return;
      if (res.status === 404) {
        this.opts.logger.warn({ lease: this.lease }, 'registration lease expired; registering again');
        this.emit('lost', 'lease expired');
        await this.register();
      }
    } catch (e) {
      this.opts.logger.warn({ err: (e as Error).message }, 'lease keepalive failed; will retry');
    }
    this.schedule();
  }

  /**
   * Deregisters now (revokes the lease, which deletes the Workload) and stops keepalives. Once:
   * a later call (a sidecar's close() after its graceful shutdown) waits for the first.
   */
  stop(): Promise<void> {
    this.stopping ??= this.deregister();
    this.wake?.();
    return this.stopping;
  }

  private get stopped(): boolean {
    return this.stopping !== undefined;
  }

  private async deregister(): Promise<void> {
    clearTimeout(this.timer);
    await this.inflight;
    if (this.lease === 0) return;
    try {
      const res = await this.opts.call('DELETE', `/api/v1/leases/${this.lease}`);
      // 404: the lease expired or was revoked before we stopped, and the Workload went with it.
      if (res.status === 404)
        this.opts.logger.info({ lease: this.lease }, 'lease already gone; the workload went with it');
      else if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      else this.opts.logger.info({ lease: this.lease }, 'workload deregistered');
    } catch (e) {
      this.opts.logger.warn({ err: (e as Error).message }, 'could not deregister; the lease will expire');
    }
  }
}
