// The four set-ups the proxy bench compares, all on loopback: the load generator talks to an
// "outbound" hop, which forwards to an "inbound" hop, which forwards to the upstream; "direct"
// has no hops. Every hop keeps HTTP/1.1 connections alive to the next one, as a tuned mesh
// would. Each proxy runs with one worker (nginx `worker_processes 1`, HAProxy `nbthread 1`;
// a Weft sidecar is one Node process) so that every hop gets at most one core's worth, as a
// sidecar would, and so that the comparison is per core.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, removeDir, start, stop, tempDir, waitForOutput, type Child } from './processes.js';

export type VariantName = 'direct' | 'weft' | 'nginx' | 'haproxy';

export interface Topology {
  name: VariantName;
  /** Where the load generator sends its requests. */
  url: string;
  /** Host header to send (the service name, for Weft's outbound listener). */
  host: string | undefined;
  /** The measured proxies: [outbound hop, inbound hop]; empty for direct. */
  hops: Child[];
  /** Processes that support a variant but are not measured (Weft's control plane). */
  support: Child[];
  stop(): Promise<void>;
}

export const BODY_BYTES = 1024;
const SERVICE = 'bench-upstream';
const WEFT_BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The parts of an nginx config that would otherwise point at system paths. */
function nginxPreamble(dir: string): string {
  return `
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 8192; }
`;
}

function nginxHttpCommon(dir: string): string {
  return `
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  # nginx 1.22 closes a keep-alive connection after 1,000 requests by default; Weft and
  # HAProxy do not, so that cost is taken out.
  keepalive_requests 1000000;
  keepalive_timeout 60s;
`;
}

async function startNginx(name: string, dir: string, config: string, port: number): Promise<Child> {
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const child = start(name, 'nginx', ['-c', file, '-g', 'daemon off;']);
  await waitForHttp(child, `http://127.0.0.1:${port}/`, undefined);
  return child;
}

/** nginx serving one static 1 kB file: the upstream of every variant. */
export async function startUpstream(): Promise<{ port: number; child: Child; stop(): Promise<void> }> {
  const dir = tempDir('weft-proxy-bench-upstream-');
  writeFileSync(join(dir, 'body'), 'x'.repeat(BODY_BYTES));
  const port = await freePort();
  const config = `${nginxPreamble(dir)}
http {
${nginxHttpCommon(dir)}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / { root ${dir}; try_files /body =404; default_type text/plain; }
  }
}
`;
  const child = await startNginx('upstream nginx', dir, config, port);
  return {
    port,
    child,
    async stop() {
      await stop(child);
      removeDir(dir);
    },
  };
}

/** One nginx reverse-proxy hop with a keep-alive pool to `next`. */
function nginxHop(dir: string, listen: number, next: number, first: boolean): string {
  // Forwarding headers as the outbound side of a mesh adds them (Weft sets the same ones).
  const forwarding = first
    ? `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Request-Id $request_id;`
    : '';
  return `${nginxPreamble(dir)}
http {
${nginxHttpCommon(dir)}
  upstream next {
    server 127.0.0.1:${next};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
  }
  server {
    listen 127.0.0.1:${listen} backlog=4096;
    location / {
      proxy_pass http://next;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      ${forwarding}
    }
  }
}
`;
}

function haproxyHop(listen: number, next: number, first: boolean): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  # Reuse idle server connections across client connections, as a mesh's pool does.
  http-reuse always

frontend in
  bind 127.0.0.1:${listen}
${first ? '  option forwardfor\n  http-request set-header X-Request-Id %[uuid]\n' : ''}  default_backend next

backend next
  server s1 127.0.0.1:${next}
`;
}

async function chain(
  name: VariantName,
  upstreamPort: number,
  startHop: (role: 'outbound' | 'inbound', dir: string, listen: number, next: number) => Promise<Child>,
): Promise<Topology> {
  const dir = tempDir(`weft-proxy-bench-${name}-`);
  const hops: Child[] = [];
  const inPort = await freePort();
  const outPort = await freePort();
  try {
    for (const [role, listen, next] of [
      ['inbound', inPort, upstreamPort],
      ['outbound', outPort, inPort],
    ] as const) {
      const hopDir = join(dir, role);
      mkdirSync(hopDir);
      hops.unshift(await startHop(role, hopDir, listen, next));
    }
  } catch (e) {
    for (const h of hops) await stop(h);
    removeDir(dir);
    throw e;
  }
  return {
    name,
    url: `http://127.0.0.1:${outPort}/`,
    host: undefined,
    hops,
    support: [],
    async stop() {
      await Promise.all(hops.map((h) => stop(h)));
      removeDir(dir);
    },
  };
}

export function startNginxChain(upstreamPort: number): Promise<Topology> {
  return chain('nginx', upstreamPort, (role, dir, listen, next) =>
    startNginx(`nginx ${role}`, dir, nginxHop(dir, listen, next, role === 'outbound'), listen),
  );
}

export function startHaproxyChain(upstreamPort: number): Promise<Topology> {
  return chain('haproxy', upstreamPort, async (role, dir, listen, next) => {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyHop(listen, next, role === 'outbound'));
    const child = start(`haproxy ${role}`, 'haproxy', ['-f', file, '-db']);
    await waitForHttp(child, `http://127.0.0.1:${listen}/`, undefined);
    return child;
  });
}

export function direct(upstreamPort: number): Topology {
  return {
    name: 'direct',
    url: `http://127.0.0.1:${upstreamPort}/`,
    host: undefined,
    hops: [],
    support: [],
    stop: () => Promise.resolve(),
  };
}

/**
 * Weft: a real control plane, a sidecar for the upstream (inbound; it registers the upstream as
 * service `bench-upstream`) and a client-only sidecar whose outbound listener takes the load,
 * routed by `Host: bench-upstream` as an app behind HTTP_PROXY would be.
 */
export async function startWeft(upstreamPort: number, cpuProfDir: string | undefined): Promise<Topology> {
  const dir = tempDir('weft-proxy-bench-weft-');
  const started: Child[] = [];
  // Per-request logging would be measured as proxy cost; warnings still show up in errors.
  const env = { ...process.env, WEFT_LOG_LEVEL: 'warn' };
  const node = (name: string, args: string[], profile: boolean, token?: string): Child => {
    const flags = profile && cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [];
    const c = start(name, process.execPath, [...flags, WEFT_BIN, ...args], {
      ...env,
      ...(token === undefined ? {} : { WEFT_TOKEN: token }),
    });
    started.push(c);
    return c;
  };
  try {
    const cp = node(
      'weft control-plane',
      [
        'control-plane',
        '--data-dir',
        join(dir, 'data'),
        '--api-addr',
        '127.0.0.1:0',
        '--xds-addr',
        '127.0.0.1:0',
      ],
      false,
    );
    const api = (await waitForOutput(cp, /^api: (\S+)$/m))[1]!;
    const adminToken = readFileSync((await waitForOutput(cp, /^admin-token: (.+)$/m))[1]!, 'utf8').trim();
    // Each sidecar joins with a join token for its service account (its service name).
    const joinToken = async (serviceAccount: string): Promise<string> => {
      const res = await fetch(`${api}/api/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ serviceAccount, ttlSeconds: 3600 }),
      });
      const body = (await res.json()) as { token?: string; message?: string };
      if (!body.token) throw new Error(`join token: ${res.status} ${body.message ?? ''}`);
      return body.token;
    };
    const ports = [
      '--outbound-addr',
      '127.0.0.1:0',
      '--inbound-addr',
      '127.0.0.1:0',
      '--admin-addr',
      '127.0.0.1:0',
    ];
    const inbound = node(
      'weft sidecar (inbound)',
      ['sidecar', '--service', SERVICE, '--app-port', String(upstreamPort), '--control-plane', api, ...ports],
      true,
      await joinToken(SERVICE),
    );
    const outbound = node(
      'weft sidecar (outbound)',
      ['sidecar', '--service', 'bench-client', '--control-plane', api, ...ports],
      true,
      await joinToken('bench-client'),
    );
    await waitForOutput(inbound, /^ready$/m);
    const out = (await waitForOutput(outbound, /^outbound: (\S+)$/m))[1]!;
    const url = `http://${out}/`;
    // "ready" means registered; the client sidecar has the endpoint once its EDS update lands.
    await waitForHttp(outbound, url, SERVICE);
    return {
      name: 'weft',
      url,
      host: SERVICE,
      hops: [outbound, inbound],
      support: [cp],
      async stop() {
        // Sidecars first (they deregister through the control plane), then the control plane.
        await Promise.all([stop(outbound), stop(inbound)]);
        await stop(cp);
        removeDir(dir);
      },
    };
  } catch (e) {
    for (const c of started.reverse()) await stop(c, 2000);
    removeDir(dir);
    throw e;
  }
}

function get(url: string, host: string | undefined): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { host } : {}, agent: false, timeout: 2000 }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until the URL answers 200 with the 1 kB body, so a set-up is proven end to end. */
export async function waitForHttp(
  child: Child,
  url: string,
  host: string | undefined,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited:\n${child.out()}\n${child.err()}`);
    }
    try {
      const r = await get(url, host);
      if (r.status === 200 && r.bytes === BODY_BYTES) return;
      last = `status ${r.status}, ${r.bytes} bytes`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`${url} (via ${child.name}) did not answer 200 with ${BODY_BYTES} bytes: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
