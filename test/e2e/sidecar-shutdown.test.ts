// End to end: a standalone `weft sidecar` told to stop (SIGTERM) while its app has a call in
// flight through it lets that call finish before it exits; told to stop before its app is up,
// it exits cleanly without ever saying it is ready.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  eventually,
  freePort,
  getViaProxy,
  startControlPlane,
  startMeshProcess,
  tempDir,
  type ControlPlaneProcess,
} from '../helpers/weft-process.js';

let cp: ControlPlaneProcess | undefined;
const servers: Array<{ close(): void }> = [];
after(async () => {
  for (const s of servers) s.close();
  await cp?.stop();
});

test('SIGTERM with an outbound call in flight: the call completes, then the sidecar exits 0', async () => {
  cp = await startControlPlane({ dataDir: tempDir() });
  const appPort = await freePort();
  // The upstream answers after 1.5 s: long enough to be in flight when the client's sidecar stops.
  const app = createServer((_req, res) => setTimeout(() => res.end('slow answer'), 1500));
  servers.push(app);
  await new Promise<void>((r) => app.listen(appPort, '127.0.0.1', () => r()));
  await startMeshProcess({ service: 'slow', controlPlane: cp.apiUrl, appPort });
  const client = await startMeshProcess({ service: 'caller', controlPlane: cp.apiUrl });
  await eventually(
    'the caller routes to slow',
    async () => (await getViaProxy(client.outbound, 'slow')).status === 200,
    10_000,
  );

  const inFlight = getViaProxy(client.outbound, 'slow');
  await new Promise((r) => setTimeout(r, 300));
  const exit = client.stop('SIGTERM');
  const res = await inFlight;
  assert.equal(res.status, 200, res.body);
  assert.equal(res.body, 'slow answer');
  assert.equal(await exit, 0);
});

test('SIGTERM before the app answers: the sidecar exits 0, never says ready, reports no error', async () => {
  cp ??= await startControlPlane({ dataDir: tempDir() });
  // Nothing listens on the app port: the sidecar has its config and listeners, and waits for it.
  const appPort = await freePort();
  const sidecar = await startMeshProcess({
    service: 'never-up',
    controlPlane: cp.apiUrl,
    appPort,
    until: /^admin: /m,
  });
  const code = await sidecar.stop('SIGTERM');
  assert.equal(code, 0, sidecar.stderr());
  assert.doesNotMatch(sidecar.stdout(), /^ready$/m);
  assert.doesNotMatch(sidecar.stderr(), /error/i);
});
