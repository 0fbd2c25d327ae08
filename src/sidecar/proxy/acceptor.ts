// A listening socket with what every listener needs around it: a cap on concurrent
// connections (beyond it new ones are closed on accept), the set of open connections (for
// drain and close), and a way to stop accepting while open connections carry on.

import net from 'node:net';
import type { Logger } from '../../log.js';

export class Acceptor {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private idleWaiters: Array<() => void> = [];
  private lastDropLog = 0;
  private dropped = 0;

  constructor(
    readonly name: string,
    private readonly host: string,
    private readonly port: number,
    maxConnections: number,
    private readonly logger: Logger,
    onConnection: (socket: net.Socket) => void,
  ) {
    // Half-open as Node's own HTTP server does: the codec decides what a client's FIN means.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) this.wakeIdle();
      });
      onConnection(socket);
    });
    this.server.maxConnections = maxConnections;
    this.server.on('drop', () => {
      this.dropped++;
      const now = Date.now();
      if (now - this.lastDropLog > 1_000) {
        this.lastDropLog = now;
        this.logger.warn(
          { listener: name, maxConnections: this.server.maxConnections, refused: this.dropped },
          'connection limit reached: refusing new connections',
        );
      }
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.host, port: this.port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) =>
          this.logger.error({ listener: this.name, err: err.message }, 'listener error'),
        );
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    return a !== null && typeof a === 'object'
      ? { host: a.address, port: a.port }
      : { host: this.host, port: this.port };
  }

  setMaxConnections(n: number): void {
    this.server.maxConnections = n;
  }

  get connections(): number {
    return this.sockets.size;
  }

  get refused(): number {
    return this.dropped;
  }

  /** Closes the listening socket now; open connections are left alone. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /** Resolves once every connection accepted here has closed. */
  whenIdle(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  destroyAll(): void {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
