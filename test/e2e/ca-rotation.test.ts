// End to end: rotating the CA root of a running mesh under steady mTLS traffic, through the
// operator's commands. With --svid-ttl 60s, `weft ca rotate --prepare 4s --overlap 60s`: the new
// root must reach both sidecars (their admin /certs bundle) before it signs anything; once it
// signs, both sidecars move to SVIDs under it; after `weft ca finish` their bundles hold only
// it; a sidecar that joins afterwards (with a new token) reaches the others; and no request
// fails at any point. Before root rotations were prepared and pushed, the control plane moved to
// the new root at once and running sidecars, which trusted only the old one, lost it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  apiFetch,
  eventually,
  getViaProxy,
  runWeft,
  startControlPlane,
  startMeshProcess,
  tempDir,
} from '../helpers/weft-process.js';
import { startXfccPair, type HostPort, type SidecarProcess } from '../helpers/sidecar-process.js';

interface Certs {
  certificates: Array<{ serialNumber: string; issuer: string }>;
  trustBundle: Array<{ subject: string; fingerprint256: string }>;
}

interface CaStatus {
  phase: string;
  active: { id: string; roots: string[] };
  prepared?: { id: string; roots: string[]; activateAt: string };
  retiring?: { id: string };
  trustBundle: { roots: string[]; subscribed: number; current: number };
}

async function certs(s: SidecarProcess): Promise<Certs> {
  const res = await fetch(`http://${s.admin.host}:${s.admin.port}/certs`);
  return (await res.json()) as Certs;
}

/** The fingerprint of the root in the sidecar's own bundle that issued its SVID. */
function svidRoot(c: Certs): string | undefined {
  return c.trustBundle.find((r) => r.subject === c.certificates[0]!.issuer)?.fingerprint256;
}

function bundleOf(c: Certs): string[] {
  return c.trustBundle.map((r) => r.fingerprint256);
}

test(
  'a root rotation under steady traffic: trusted everywhere first, then signing, then alone; zero failures',
  { timeout: 120_000 },
  async (t) => {
    const cp = await startControlPlane({ dataDir: tempDir(), extra: ['--svid-ttl', '60s'] });
    t.after(() => cp.stop());
    const weft = async (...args: string[]): Promise<string> => {
      const r = await runWeft(args, { server: cp.apiUrl });
      assert.equal(r.code, 0, `weft ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    // The CLI for what an operator does; the API (no process to start) for reads in between.
    const status = async (): Promise<CaStatus> =>
      (await (await apiFetch(`${cp.apiUrl}/api/v1/ca`)).json()) as CaStatus;

    const { client, server } = await startXfccPair(t, cp.apiUrl, {
      client: 'ca-client',
      server: 'ca-server',
    });
    const sidecars = [client, server];

    // Steady traffic the whole time; keep-alive, so old connections carry on beside new ones.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    t.after(() => agent.destroy());
    let ok = 0;
    const failures: string[] = [];
    const one = (to: HostPort): Promise<void> =>
      new Promise((resolve) => {
        const req = http.request(
          { host: to.host, port: to.port, path: '/tick', headers: { host: 'ca-server' }, agent },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => {
              if (res.statusCode === 200 && body.includes('URI=spiffe://')) ok++;
              else failures.push(`${new Date().toISOString()} ${res.statusCode}: ${body.slice(0, 200)}`);
              resolve();
            });
          },
        );
        req.on('error', (err) => {
          failures.push(`${new Date().toISOString()} ${err.message}`);
          resolve();
        });
        req.end();
      });
    let running = true;
    const traffic = (async () => {
      while (running) {
        await Promise.all([one(client.outbound), one(client.outbound)]);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    t.after(() => {
      running = false;
      return traffic;
    });
    const afterMore = (n: number): Promise<number> => {
      const target = ok + n;
      return eventually(`${n} more successful requests`, async () => ok >= target && ok, 20_000);
    };
    await afterMore(20);

    const before = JSON.parse(await weft('ca', 'status', '-o', 'json')) as CaStatus;
    assert.equal(before.phase, 'stable');
    const oldRoot = before.active.roots[0]!;
    for (const s of sidecars) assert.deepEqual(bundleOf(await certs(s)), [oldRoot]);

    // 1. Prepared: the new root is pushed to every sidecar while the old one still signs.
    const started = await weft('ca', 'rotate', '--prepare', '5s', '--overlap', '60s');
    assert.match(started, /CA rotation started: CA [0-9a-f]+ \(generated\) is prepared/);
    const prepared = await status();
    assert.equal(prepared.phase, 'prepared');
    const newRoot = prepared.prepared!.roots[0]!;
    const activateAt = Date.parse(prepared.prepared!.activateAt);
    for (const s of sidecars) {
      await eventually(`${s.workload} to trust the prepared root`, async () => {
        const c = await certs(s);
        return bundleOf(c).join() === [oldRoot, newRoot].join() && svidRoot(c) === oldRoot;
      });
    }
    const reachedAt = Date.now();
    assert.ok(reachedAt < activateAt, `the new root reached every sidecar before it signed`);
    t.diagnostic(`the prepared root reached both sidecars ${activateAt - reachedAt} ms before it signed`);
    // The control plane saw both ACK it.
    const reached = await eventually('both proxies to ACK the bundle', async () => {
      const s = await status();
      return s.trustBundle.current === 2 && s;
    });
    assert.deepEqual(reached.trustBundle.roots, [oldRoot, newRoot]);
    assert.equal(reached.trustBundle.subscribed, 2);

    // 2. Active: the new root signs; the sidecars hear of it and renew under it.
    for (const s of sidecars) {
      await eventually(
        `${s.workload} to hold an SVID of the new root`,
        async () => {
          const c = await certs(s);
          return bundleOf(c).join() === [newRoot, oldRoot].join() && svidRoot(c) === newRoot;
        },
        20_000,
      );
    }
    const active = await status();
    assert.equal(active.phase, 'overlap');
    assert.deepEqual(active.active.roots, [newRoot]);
    await afterMore(20);

    // 3. The overlap ended on purpose: only the new root is trusted, everywhere.
    assert.match(await weft('ca', 'finish'), /Rotation finished: only CA [0-9a-f]+'s roots are trusted now/);
    for (const s of sidecars) {
      await eventually(`${s.workload} to trust only the new root`, async () => {
        const c = await certs(s);
        return bundleOf(c).join() === newRoot && svidRoot(c) === newRoot;
      });
    }
    const after = await status();
    assert.equal(after.phase, 'stable');
    assert.deepEqual(after.trustBundle.roots, [newRoot]);
    await afterMore(20);

    // A workload that joins now, with a token pinned to the new root, reaches the others.
    const token = (await weft('token', 'create', '--service-account', 'ca-late')).trim().split('\n').at(-1)!;
    const late = await startMeshProcess({ service: 'ca-late', controlPlane: cp.apiUrl, token });
    t.after(() => late.stop());
    const answer = await eventually(
      'the late sidecar to reach ca-server',
      async () => {
        const r = await getViaProxy(late.outbound, 'ca-server', '/late');
        return r.status === 200 && r;
      },
      10_000,
    );
    assert.match(answer.body, /URI=spiffe:\/\/weft\.local\/ns\/default\/sa\/ca-late/);
    assert.match(await weft('ca', 'status'), /phase\s+stable: one root, trusted and signing/);

    running = false;
    await traffic;
    t.diagnostic(`${ok} requests, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.ok(ok > 100, `steady traffic (${ok} requests)`);
  },
);
