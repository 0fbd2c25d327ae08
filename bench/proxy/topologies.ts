// The four set-ups the proxy bench compares, all on loopback: the load generator talks to an
// "outbound" hop, which forwards to an "inbound" hop, which forwards to the upstream; "direct"
// has no hops. Every hop keeps HTTP/1.1 connections alive to the next one, as a tuned mesh
// would. Each proxy runs with one worker (nginx `worker_processes 1`, HAProxy `nbthread 1`;
// a Weft sidecar is one Node process) so that every hop gets at most one core's worth, as a
// sidecar would, and so that the comparison is per core.
//
// Between the two hops every variant speaks mutual TLS 1.3, as Weft's sidecars always do: each
// hop presents an ECDSA P-256 certificate and verifies the other's against its CA (Weft's own
// CA for the sidecars; the bench's, bench-pki.ts, for nginx and HAProxy), and nginx and HAProxy
// are pinned to the suite and group the sidecars negotiate. The load generator's leg to the
// outbound hop and the inbound hop's leg to the upstream stay plaintext, as in a mesh, where
// they are the pod's own loopback.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { workloadSpiffeId } from '../../src/ca/spiffe-id.js';
import { outboundSni } from '../../src/compiler/mtls.js';
import { silentLogger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';
import { INBOUND_NAME, TLS_GROUP, TLS_SUITE, type BenchPki } from './bench-pki.js';
import { freePort, removeDir, start, stop, tempDir, waitForOutput, type Child } from './processes.js';
import { clientContext, oneRequest, type TlsTarget } from './tls-client.js';

export type VariantName = 'direct' | 'weft' | 'node-pipe' | 'nginx' | 'haproxy';

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
  /** The inbound hop's mTLS listener and a client certificate it accepts; none for direct. */
  inbound: TlsTarget | undefined;
  /**
   * Weft only: another outbound hop, listening on `port` and writing its TLS keys to `keylog`,
   * for a capture that decrypts the multiplexed hop (legs.ts); it must be dialled while the
   * capture runs. Stopped with the topology, or sooner by its own stop().
   */
  startCapturedHop?(port: number, keylog: string): Promise<{ url: string; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

export const BODY_BYTES = 1024;
const SERVICE = 'bench-upstream';
const WEFT_BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const NODE_PIPE_BIN = fileURLToPath(new URL('./node-pipe.js', import.meta.url));

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

async function startNginx(
  name: string,
  dir: string,
  config: string,
  ready: (c: Child) => Promise<void>,
): Promise<Child> {
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const child = start(name, 'nginx', ['-c', file, '-g', 'daemon off;']);
  await ready(child);
  return child;
}

const plainReady =
  (port: number) =>
  (c: Child): Promise<void> =>
    waitForHttp(c, `http://127.0.0.1:${port}/`, undefined);

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
  const child = await startNginx('upstream nginx', dir, config, plainReady(port));
  return {
    port,
    child,
    async stop() {
      await stop(child);
      removeDir(dir);
    },
  };
}

/**
 * One nginx reverse-proxy hop with a keep-alive pool to `next`. The outbound hop's pool is mTLS
 * to the inbound hop (its own certificate, the inbound's checked against the bench CA and
 * name); the inbound hop's listener requires a client certificate from the bench CA.
 */
function nginxHop(
  dir: string,
  listen: number,
  next: number,
  role: 'outbound' | 'inbound',
  pki: BenchPki,
): string {
  const outbound = role === 'outbound';
  // Forwarding headers as the outbound side of a mesh adds them (Weft sets the same ones).
  const forwarding = outbound
    ? `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Request-Id $request_id;`
    : '';
  // Weft's sidecar never resumes a TLS session: every pool connection is a full handshake. nginx
  // would resume (with the inbound hop's session tickets) unless told not to. nginx 1.22 sends
  // no ALPN upstream (Weft's sidecar sends http/1.1); the rest is alike.
  const upstreamTls = outbound
    ? `proxy_ssl_certificate ${pki.files.outbound.cert};
      proxy_ssl_certificate_key ${pki.files.outbound.key};
      proxy_ssl_trusted_certificate ${pki.caFile};
      proxy_ssl_verify on;
      proxy_ssl_name ${INBOUND_NAME};
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_conf_command Ciphersuites ${TLS_SUITE};
      proxy_ssl_conf_command Groups ${TLS_GROUP};
      proxy_ssl_session_reuse off;`
    : '';
  const listenerTls = outbound
    ? ''
    : `ssl_certificate ${pki.files.inbound.cert};
    ssl_certificate_key ${pki.files.inbound.key};
    ssl_client_certificate ${pki.caFile};
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve ${TLS_GROUP};
    ssl_conf_command Ciphersuites ${TLS_SUITE};`;
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
    listen 127.0.0.1:${listen}${outbound ? '' : ' ssl'} backlog=4096;
    ${listenerTls}
    location / {
      proxy_pass ${outbound ? 'https' : 'http'}://next;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      ${forwarding}
      ${upstreamTls}
    }
  }
}
`;
}

/**
 * One HAProxy hop. HAProxy 2.6 has no setting for the groups it offers as a TLS client; it
 * offers OpenSSL's default list with an X25519 key share, as Node does, and the inbound hop
 * accepts X25519 only. `no-ssl-reuse`: no session resumption, as with Weft and nginx here.
 */
function haproxyHop(listen: number, next: number, role: 'outbound' | 'inbound', pki: BenchPki): string {
  const outbound = role === 'outbound';
  const bind = outbound
    ? `127.0.0.1:${listen}`
    : `127.0.0.1:${listen} ssl crt ${pki.files.inbound.combined} ca-file ${pki.caFile} verify required ssl-min-ver TLSv1.3 alpn http/1.1`;
  const server = outbound
    ? `127.0.0.1:${next} ssl crt ${pki.files.outbound.combined} ca-file ${pki.caFile} verify required sni str(${INBOUND_NAME}) ssl-min-ver TLSv1.3 alpn http/1.1 no-ssl-reuse`
    : `127.0.0.1:${next}`;
  return `global
  nbthread 1
  maxconn 4096
  ssl-default-bind-ciphersuites ${TLS_SUITE}
  ssl-default-bind-curves ${TLS_GROUP}
  ssl-default-server-ciphersuites ${TLS_SUITE}

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
  bind ${bind}
${outbound ? '  option forwardfor\n  http-request set-header X-Request-Id %[uuid]\n' : ''}  default_backend next

backend next
  server s1 ${server}
`;
}

/** The inbound hop of an nginx or HAProxy chain, as the handshake client reaches it. */
function benchTarget(port: number, pki: BenchPki): TlsTarget {
  return {
    host: '127.0.0.1',
    port,
    servername: INBOUND_NAME,
    hostHeader: SERVICE,
    serverId: pki.spiffeId('inbound'),
    ...pki.credentials.client,
    bodyBytes: BODY_BYTES,
  };
}

async function chain(
  name: VariantName,
  upstreamPort: number,
  pki: BenchPki,
  startHop: (
    role: 'outbound' | 'inbound',
    dir: string,
    listen: number,
    next: number,
    ready: (c: Child) => Promise<void>,
  ) => Promise<Child>,
): Promise<Topology> {
  const dir = tempDir(`weft-proxy-bench-${name}-`);
  const hops: Child[] = [];
  const inPort = await freePort();
  const outPort = await freePort();
  const inbound = benchTarget(inPort, pki);
  try {
    const context = clientContext(inbound);
    for (const [role, listen, next, ready] of [
      ['inbound', inPort, upstreamPort, (c: Child) => waitForTls(c, inbound, context)],
      ['outbound', outPort, inPort, plainReady(outPort)],
    ] as const) {
      const hopDir = join(dir, role);
      mkdirSync(hopDir);
      hops.unshift(await startHop(role, hopDir, listen, next, ready));
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
    inbound,
    async stop() {
      await Promise.all(hops.map((h) => stop(h)));
      removeDir(dir);
    },
  };
}

export function startNginxChain(upstreamPort: number, pki: BenchPki): Promise<Topology> {
  return chain('nginx', upstreamPort, pki, (role, dir, listen, next, ready) =>
    startNginx(`nginx ${role}`, dir, nginxHop(dir, listen, next, role, pki), ready),
  );
}

export function startHaproxyChain(upstreamPort: number, pki: BenchPki): Promise<Topology> {
  return chain('haproxy', upstreamPort, pki, async (role, dir, listen, next, ready) => {
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyHop(listen, next, role, pki));
    const child = start(`haproxy ${role}`, 'haproxy', ['-f', file, '-db']);
    await ready(child);
    return child;
  });
}

/**
 * The floor of a proxy written for Node: two Node processes that only relay bytes, one
 * connection onward per connection in (node-pipe.ts), with the nginx chain's mutual TLS.
 * `load`: each hop also spins `burnUs` on every read, or calls `codeFns` distinct functions
 * (bench/cpu-latency.ts).
 */
export function startNodePipeChain(
  upstreamPort: number,
  pki: BenchPki,
  load: { burnUs?: number; codeFns?: number } = {},
): Promise<Topology> {
  return chain('node-pipe', upstreamPort, pki, async (role, _dir, listen, next, ready) => {
    const { cert, key } = pki.files[role];
    const args = [NODE_PIPE_BIN, role, String(listen), String(next), cert, key, pki.caFile, INBOUND_NAME];
    if (load.burnUs || load.codeFns) args.push(String(load.burnUs ?? 0), String(load.codeFns ?? 0));
    const child = start(`node-pipe ${role}`, process.execPath, args);
    await waitForOutput(child, /^ready$/m);
    await ready(child);
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
    inbound: undefined,
    stop: () => Promise.resolve(),
  };
}

/**
 * Weft: a real control plane, a sidecar for the upstream (inbound; it registers the upstream as
 * service `bench-upstream`) and a client-only sidecar whose outbound listener takes the load,
 * routed by `Host: bench-upstream` as an app behind HTTP_PROXY would be. The handshake client
 * gets its own SVID as a sidecar does: a join token from the admin API, then a CSR to the
 * workload API (identity-client.ts). The inbound sidecar (STRICT, the default) accepts any SVID
 * of the trust domain, as no authorization policy is configured.
 */
export async function startWeft(upstreamPort: number, cpuProfDir: string | undefined): Promise<Topology> {
  const dir = tempDir('weft-proxy-bench-weft-');
  const started: Child[] = [];
  // Per-request logging would be measured as proxy cost; warnings still show up in errors.
  const env = { ...process.env, WEFT_LOG_LEVEL: 'warn' };
  const node = (
    name: string,
    args: string[],
    profile: boolean,
    token?: string,
    nodeFlags: string[] = [],
  ): Child => {
    const flags = profile && cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [];
    const c = start(name, process.execPath, [...flags, ...nodeFlags, WEFT_BIN, ...args], {
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
    const client = ['sidecar', '--service', 'bench-client', '--control-plane', api];
    const captured: Child[] = [];
    const outbound = node(
      'weft sidecar (outbound)',
      [...client, ...ports],
      true,
      await joinToken('bench-client'),
    );
    await waitForOutput(inbound, /^ready$/m);
    const out = (await waitForOutput(outbound, /^outbound: (\S+)$/m))[1]!;
    const url = `http://${out}/`;
    // "ready" means registered; the client sidecar has the endpoint once its EDS update lands.
    await waitForHttp(outbound, url, SERVICE);

    const info = (await (await fetch(`${api}/api/v1/info`)).json()) as JoinInfo;
    const identity = new IdentityClient({
      info,
      namespace: 'default',
      serviceAccount: 'bench-handshake',
      token: await joinToken('bench-handshake'),
      logger: silentLogger(),
    });
    const svid = await identity.start();
    identity.close();
    const [host, port] = (await waitForOutput(inbound, /^inbound: (\S+):(\d+)$/m)).slice(1);
    const target: TlsTarget = {
      host: host!,
      port: Number(port),
      // What the client sidecar sends; the inbound sidecar does not route by it.
      servername: outboundSni('default', SERVICE, Number(port)),
      hostHeader: SERVICE,
      serverId: workloadSpiffeId(info.trustDomain, { namespace: 'default', serviceAccount: SERVICE }),
      caPem: svid.trustBundlePem,
      certPem: svid.chainPem,
      keyPem: svid.privateKeyPem,
      bodyBytes: BODY_BYTES,
    };
    await waitForTls(inbound, target, clientContext(target));
    return {
      name: 'weft',
      url,
      host: SERVICE,
      hops: [outbound, inbound],
      support: [cp],
      inbound: target,
      async startCapturedHop(port, keylog) {
        const hop = node(
          'weft sidecar (outbound, captured)',
          [...client, ...ports.slice(2), '--outbound-addr', `127.0.0.1:${port}`],
          false,
          await joinToken('bench-client'),
          [`--tls-keylog=${keylog}`],
        );
        captured.push(hop);
        const hopUrl = `http://127.0.0.1:${port}/`;
        await waitForHttp(hop, hopUrl, SERVICE);
        return { url: hopUrl, stop: () => stop(hop) };
      },
      async stop() {
        // Sidecars first (they deregister through the control plane), then the control plane.
        await Promise.all([stop(outbound), stop(inbound), ...captured.map((c) => stop(c))]);
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

/** Polls until an inbound hop serves the 1 kB body to a client with a trusted certificate. */
async function waitForTls(
  child: Child,
  target: TlsTarget,
  context: SecureContext,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited:\n${child.out()}\n${child.err()}`);
    }
    const r = await oneRequest(target, context, 2000);
    if (r.ok) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${child.name} did not serve mTLS on ${target.host}:${target.port}: ${r.error}\n${child.err()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
