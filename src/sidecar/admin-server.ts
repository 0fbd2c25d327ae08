// The sidecar's admin endpoint (default 127.0.0.1:15020): readiness for whoever starts traffic
// to this workload, the accepted xDS config for people debugging it, per-cluster state from
// the proxy, the current certificate, and a drain trigger for graceful shutdown. Everything it reports comes through
// injected functions, so it can be tested without a proxy and the proxy without it.
import { sendJson, sendText } from '../http-util.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import type { Readiness } from './xds-agent.js';

/** What the admin server needs from the xDS agent (XdsAgent provides both). */
export interface AdminAgentView {
  readiness(): Readiness;
  configDump(): unknown;
}

export interface AdminServerOptions {
  agent: AdminAgentView;
  /** Whether the local app is up; /ready fails while it is not. May be async. */
  appHealthy: () => boolean | Promise<boolean>;
  /** Per-cluster state for GET /clusters, from the proxy. */
  clusterStats: () => unknown;
  /** Authorization decision counters for GET /stats, from the proxy. */
  rbacStats?: () => unknown;
  /**
   * The workload's current X.509-SVID for GET /certs (SPIFFE ID, serial, validity; never the
   * key), as Envoy's /certs lists its certificates: how an operator sees a rotation happen.
   */
  certs?: () => unknown;
  /** Starts a graceful drain (POST /drain); need not wait for it to finish. */
  drain: () => void | Promise<void>;
  /** How long /ready waits for appHealthy before failing. Default 2000. */
  appCheckTimeoutMs?: number;
  /** True once a graceful shutdown began: /ready then answers 503, as Envoy does while draining. */
  draining?: () => boolean;
  logger?: Logger;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export class AdminServer {
  private readonly opts: AdminServerOptions;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly routes: Record<string, Partial<Record<string, Handler>>>;

  constructor(opts: AdminServerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger();
    this.routes = {
      '/ready': { GET: (_req, res) => this.ready(res) },
      '/config_dump': { GET: (_req, res) => sendJson(res, 200, this.opts.agent.configDump()) },
      '/clusters': { GET: (_req, res) => sendJson(res, 200, this.opts.clusterStats()) },
      '/stats': { GET: (_req, res) => sendJson(res, 200, { rbac: this.opts.rbacStats?.() ?? null }) },
      '/drain': { POST: (_req, res) => this.drain(res) },
    };
    const certs = opts.certs;
    if (certs) this.routes['/certs'] = { GET: (_req, res) => sendJson(res, 200, certs()) };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err, url: req.url }, 'admin request failed');
        if (!res.headersSent) sendText(res, 500, `internal error: ${(err as Error).message}\n`);
        else res.destroy();
      });
    });
  }

  /** Binds `host:port` (port 0 picks a free one) and resolves with the bound address. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const methods = this.routes[path];
    if (methods === undefined) {
      sendText(
        res,
        404,
        `no such admin endpoint ${path}; try /ready, /config_dump, /clusters, /stats, /certs, POST /drain\n`,
      );
      return;
    }
    // HEAD is a GET whose body node:http leaves out.
    const handler = methods[req.method === 'HEAD' ? 'GET' : (req.method ?? '')];
    if (handler === undefined) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      sendText(res, 405, `${req.method ?? ''} is not allowed on ${path}\n`);
      return;
    }
    await handler(req, res);
  }

  private async ready(res: ServerResponse): Promise<void> {
    if (this.opts.draining?.()) {
      sendText(res, 503, 'not ready: draining (shutting down)\n');
      return;
    }
    const r = this.opts.agent.readiness();
    if (!r.ready) {
      sendText(res, 503, `not ready: ${r.reason ?? 'xDS config incomplete'}\n`);
      return;
    }
    const app = await this.appCheck();
    if (app !== undefined) {
      sendText(res, 503, `not ready: ${app}\n`);
      return;
    }
    sendText(res, 200, 'ready\n');
  }

  /** Why the app is not healthy, or undefined when it is. */
  private async appCheck(): Promise<string | undefined> {
    const limit = this.opts.appCheckTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`app health check did not answer within ${limit} ms`), limit);
    });
    try {
      const check = Promise.resolve()
        .then(() => this.opts.appHealthy())
        .then(
          (ok) => (ok ? undefined : 'app is not healthy'),
          (err: unknown) => `app health check failed: ${(err as Error).message}`,
        );
      return await Promise.race([check, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private drain(res: ServerResponse): void {
    // The drain runs on after the answer; its failure can only be logged.
    Promise.resolve()
      .then(() => this.opts.drain())
      .catch((err: unknown) => this.log.error({ err }, 'drain failed'));
    sendText(res, 202, 'draining\n');
  }
}
