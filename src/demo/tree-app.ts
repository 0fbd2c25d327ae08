// The demo mesh's application: a tiny HTTP service that, for each request, calls the services
// it depends on through its sidecar (the HTTP proxy in HTTP_PROXY or WEFT_OUTBOUND) and answers
// with the whole call tree, so one request to the front end shows every hop:
//   {"service":"fe","instance":"fe-0","calls":[{"service":"be1","instance":"be1-1","calls":[…]},…]}
// It knows nothing about the mesh beyond "send HTTP to the proxy", as any app would.

import { createServer, request, type IncomingMessage, type Server } from 'node:http';

export interface TreeNode {
  service: string;
  instance: string;
  calls: Array<TreeNode | { service: string; error: string }>;
}

export interface TreeAppOptions {
  service: string;
  instance: string;
  host?: string;
  port: number;
  /** Services to call for each request, by name (resolved by the sidecar). */
  calls: string[];
  /** `http://host:port` of the outbound proxy. */
  proxy?: string;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (body += d));
    res.on('end', () => resolve(body));
    res.on('error', reject);
  });
}

/** GET http://<service>/ through the proxy, in absolute form as HTTP_PROXY clients send it. */
export function callThroughProxy(
  proxy: string,
  service: string,
  path = '/',
): Promise<{ status: number; body: string }> {
  const p = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: p.hostname,
        port: Number(p.port),
        method: 'GET',
        path: `http://${service}${path}`,
        headers: { host: service },
      },
      (res) => readBody(res).then((body) => resolve({ status: res.statusCode ?? 0, body }), reject),
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`timed out calling ${service}`)));
    req.on('error', reject);
    req.end();
  });
}

export function startTreeApp(opts: TreeAppOptions): Promise<Server> {
  const proxy = opts.proxy ?? process.env.WEFT_OUTBOUND ?? process.env.HTTP_PROXY;
  const server = createServer((req, res) => {
    void (async () => {
      const calls = await Promise.all(
        opts.calls.map(async (service) => {
          if (!proxy) return { service, error: 'no proxy configured (HTTP_PROXY)' };
          try {
            const r = await callThroughProxy(proxy, service, req.url ?? '/');
            return r.status === 200
              ? (JSON.parse(r.body) as TreeNode)
              : { service, error: `${r.status} ${r.body.trim()}` };
          } catch (e) {
            return { service, error: (e as Error).message };
          }
        }),
      );
      const node: TreeNode = { service: opts.service, instance: opts.instance, calls };
      const failed = calls.some((c) => 'error' in c);
      const body = JSON.stringify(node);
      res.writeHead(failed ? 502 : 200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve(server));
  });
}
