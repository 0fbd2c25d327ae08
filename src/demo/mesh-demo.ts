// `npm start` / `weft demo`: the demo mesh. A control plane on a temporary embedded store and
// the reference topology, every app a real process started by `weft run` with its sidecar:
//
//     you ─▶ fe ─┬─▶ be1 (two instances) ─┬─▶ be2
//                │                        └─▶ be3
//                └─▶ be4
//
// It shows progress while starting, prints where to send requests, keeps a steady trickle of
// traffic going (printing each call tree), and on Ctrl-C stops every process cleanly: the apps'
// sidecars drain and deregister, then the control plane closes; no process is left behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, levelOf } from '../log.js';
import { startControlPlane, type RunningControlPlane } from '../control-plane/control-plane.js';
import { callThroughProxy, type TreeNode } from './tree-app.js';
import { freePort } from '../free-port.js';

const WEFT = fileURLToPath(new URL('../cli/main.js', import.meta.url));

interface AppSpec {
  service: string;
  instance: string;
  calls: string[];
}

const TOPOLOGY: AppSpec[][] = [
  // Started in waves, leaves first, so each app's dependencies are registered before it.
  [
    { service: 'be2', instance: 'be2-0', calls: [] },
    { service: 'be3', instance: 'be3-0', calls: [] },
    { service: 'be4', instance: 'be4-0', calls: [] },
  ],
  [
    { service: 'be1', instance: 'be1-0', calls: ['be2', 'be3'] },
    { service: 'be1', instance: 'be1-1', calls: ['be2', 'be3'] },
  ],
  [{ service: 'fe', instance: 'fe-0', calls: ['be1', 'be4'] }],
];

interface Started {
  proc: ChildProcess;
  outbound: string;
  inbound?: string;
  admin: string;
}

/** `weft run` (an app with its sidecar) or, with no app, a client-only `weft sidecar`. */
function startMeshProcess(
  service: string,
  name: string,
  api: string,
  token: string,
  /** Every process is tracked from its spawn: one still starting when the demo stops is stopped too. */
  track: ChildProcess[],
  app?: { port: number; calls: string[] },
): Promise<Started> {
  const args = [
    WEFT,
    app ? 'run' : 'sidecar',
    '--service',
    service,
    '--name',
    name,
    '--control-plane',
    api,
    '--outbound-addr',
    '127.0.0.1:0',
    '--inbound-addr',
    '127.0.0.1:0',
    '--admin-addr',
    '127.0.0.1:0',
    '--drain-timeout',
    '5',
  ];
  if (app) {
    args.push('--app-port', String(app.port), '--', process.execPath, WEFT, 'demo-app', '--service', service);
    args.push('--instance', name, '--port', String(app.port), '--calls', app.calls.join(','));
  }
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WEFT_LOG_LEVEL: process.env.WEFT_LOG_LEVEL ?? 'warn', WEFT_TOKEN: token },
  });
  track.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/^ready$/m.test(out)) {
        const field = (k: string): string | undefined => new RegExp(`^${k}: (\\S+)$`, 'm').exec(out)?.[1];
        const inbound = field('inbound');
        resolve({
          proc,
          outbound: field('outbound')!,
          admin: field('admin')!,
          ...(inbound ? { inbound } : {}),
        });
      }
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${out}`)));
  });
}

function summary(n: TreeNode | { service: string; error: string }): string {
  if ('error' in n) return `${n.service}✗`;
  const self = n.instance === n.service ? n.service : `${n.service}[${n.instance}]`;
  return n.calls.length === 0 ? self : `${self}(${n.calls.map(summary).join(',')})`;
}

export async function runMeshDemo(opts: { duration?: string; interval?: string }): Promise<void> {
  const durationMs = opts.duration === undefined ? Infinity : Number(opts.duration) * 1000;
  const intervalMs = opts.interval === undefined ? 1000 : Number(opts.interval) * 1000;
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-demo-'));
  const logger = createLogger('demo');
  logger.level = levelOf(process.env.WEFT_LOG_LEVEL, 'warn');
  const children: ChildProcess[] = [];
  let cp: RunningControlPlane | undefined;
  let stopping: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      clearTimeout(timer);
      console.log('stopping: sidecars drain and deregister, then the control plane closes …');
      const exits = children.map(
        (c) =>
          new Promise<void>((r) =>
            c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
          ),
      );
      for (const c of children) c.kill('SIGTERM');
      const killer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 10_000);
      await Promise.all(exits);
      clearTimeout(killer);
      await cp?.close();
      rmSync(dataDir, { recursive: true, force: true });
      console.log('stopped; nothing left running.');
    })());
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));

  try {
    console.log('weft demo mesh: starting a control plane (embedded store) …');
    cp = await startControlPlane({
      dataDir,
      apiAddr: '127.0.0.1:0',
      xdsAddr: '127.0.0.1:0',
      trustDomain: 'weft.local',
      logger,
    });
    console.log(`  control plane api ${cp.apiUrl}, xds ${cp.xdsAddress}`);
    // One join token per service account (each service is its own), usable by its instances,
    // pinned to the control plane's root as `weft token create` pins them: each sidecar checks
    // the trust bundle it is sent against the pin instead of trusting it on first use.
    const running = cp;
    const tokens = new Map<string, Promise<string>>();
    const tokenFor = (sa: string): Promise<string> => {
      let t = tokens.get(sa);
      if (!t) {
        t = running.identity
          .createJoinToken({ namespace: 'default', serviceAccount: sa, ttlMs: 3600_000, maxUses: 0 })
          .then((c) => c.token);
        tokens.set(sa, t);
      }
      return t;
    };
    let fe: Started | undefined;
    for (const wave of TOPOLOGY) {
      await Promise.all(
        wave.map(async (app) => {
          const port = await freePort();
          const started = await startMeshProcess(
            app.service,
            app.instance,
            cp!.apiUrl,
            await tokenFor(app.service),
            children,
            {
              port,
              calls: app.calls,
            },
          );
          if (app.service === 'fe') fe = started;
          console.log(
            `  ${app.instance.padEnd(6)} app on 127.0.0.1:${port}, its sidecar takes mesh traffic on ${started.inbound}`,
          );
        }),
      );
    }
    const you = await startMeshProcess('you', 'you', cp.apiUrl, await tokenFor('you'), children);
    console.log(`  you    a client-only sidecar: its HTTP proxy is ${you.outbound}`);
    console.log('');
    console.log('Try it:');
    console.log(
      `  curl -x http://${you.outbound} http://fe/          # the whole call tree, through the mesh`,
    );
    console.log(
      `  WEFT_ADMIN_TOKEN=$(cat ${cp.adminTokenPath}) WEFT_SERVER=${cp.apiUrl} npx weft get workloads`,
    );
    console.log(`  curl http://${fe!.admin}/clusters                # fe's sidecar: endpoints and LB stats`);
    console.log('Steady traffic (one request a second to fe; Ctrl-C to stop):');

    const started = Date.now();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        if (stopping || Date.now() - started >= durationMs) return resolve();
        const t0 = Date.now();
        callThroughProxy(`http://${you.outbound}`, 'fe')
          .then(
            (r) => {
              const tree = r.status === 200 ? summary(JSON.parse(r.body) as TreeNode) : r.body.trim();
              console.log(`  ${r.status} ${String(Date.now() - t0).padStart(3)} ms  ${tree}`);
            },
            (e: Error) => console.log(`  failed: ${e.message}`),
          )
          .finally(() => {
            timer = setTimeout(tick, intervalMs);
          });
      };
      tick();
    });
  } finally {
    await stop();
  }
}
