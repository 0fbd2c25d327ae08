// Integration: kept-open connections to the control plane's workload API (TLS) do not go on
// under credentials that have changed. When a CA rotation begins (the control plane's SVID and
// trust bundle change), an idle kept connection is closed at once, one with a request in
// progress is closed after its answer, and a watch stream over TLS ends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { silentLogger } from '../../src/log.js';
import { IdentityClient, type JoinInfo, type Svid } from '../../src/sidecar/identity-client.js';
import { spiffeServerCheck } from '../../src/ca/spiffe-id.js';
import { tcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { apiFetch, eventually, joinTokenFor, startInProcessControlPlane } from '../helpers/weft-process.js';

let cp: RunningControlPlane;
let info: JoinInfo;
const identities: IdentityClient[] = [];
const relays: TcpRelay[] = [];
before(async () => {
  cp = await startInProcessControlPlane();
  info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
});
after(async () => {
  for (const id of identities) id.close();
  for (const r of relays) await r.close();
  await cp.close();
});

async function identity(
  namespace: string,
  serviceAccount: string,
  workloadApi: string,
): Promise<IdentityClient> {
  const id = new IdentityClient({
    info: { ...info, workloadApi },
    namespace,
    serviceAccount,
    token: await joinTokenFor(cp.apiUrl, serviceAccount, namespace),
    logger: silentLogger(),
  });
  identities.push(id);
  await id.start();
  return id;
}

async function relay(): Promise<TcpRelay> {
  const r = await tcpRelay(new URL(info.workloadApi));
  relays.push(r);
  return r;
}

/** node:https options for a request with this SVID, checking the control plane's identity. */
function tlsOptions(svid: Svid, agent: Agent | false): RequestOptions {
  return {
    key: svid.privateKeyPem,
    cert: svid.chainPem,
    ca: svid.trustBundlePem,
    checkServerIdentity: spiffeServerCheck((id) => id === info.controlPlaneId, {
      server: 'the workload API',
      expected: info.controlPlaneId,
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    }),
    agent,
  };
}

test('a CA rotation begins: idle kept connections close, a busy one after its answer, TLS watches end', async () => {
  // Idle: a workload's kept connection, after one call.
  const idleRelay = await relay();
  const web = await identity('default', 'web', idleRelay.url);
  const lease = await web.call('POST', '/api/v1/leases', { ttlSeconds: 30 });
  assert.equal(lease.status, 200);
  assert.equal(idleRelay.open, 1, 'the idle connection is kept open');

  // Busy: a request the server has begun (it answered 100 Continue), its body held back.
  const busyRelay = await relay();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ ttlSeconds: 30 });
  const busy = request(`${busyRelay.url}/api/v1/leases`, {
    ...tlsOptions(web.current(), agent),
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': body.length, expect: '100-continue' },
  });
  const busyResponse = once(busy, 'response') as Promise<[IncomingMessage]>;
  busy.flushHeaders();
  await once(busy, 'continue');

  // A watch stream over TLS, with an admin SVID.
  const admin = await identity('weft-system', 'weft-admin', info.workloadApi);
  const watch = request(`${info.workloadApi}/api/v1/watch`, tlsOptions(admin.current(), false));
  watch.end();
  const [watchRes] = (await once(watch, 'response')) as [IncomingMessage];
  assert.equal(watchRes.statusCode, 200);
  watchRes.resume();
  let watchEnded = false;
  watchRes.once('end', () => (watchEnded = true));

  const rotated = once(cp.identity, 'rotated');
  const started = await apiFetch(`${cp.apiUrl}/api/v1/ca/rotate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prepareSeconds: 3600, overlapSeconds: 86400 }),
  });
  assert.equal(started.status, 200, await started.text());
  await rotated;

  await eventually('the idle kept connection to close', async () => idleRelay.open === 0, 3000);
  await eventually('the watch stream over TLS to end', async () => watchEnded, 3000);
  busy.end(body);
  const [res] = await busyResponse;
  res.resume();
  assert.equal(res.statusCode, 200);
  await eventually('the busy connection to close after its answer', async () => busyRelay.open === 0, 3000);

  // The next call is on a new connection, under the new credentials.
  const made = idleRelay.connections;
  assert.equal(
    (await web.call('POST', `/api/v1/leases/${(lease.json as { id: number }).id}/keepalive`)).status,
    200,
  );
  assert.equal(idleRelay.connections, made + 1);
  agent.destroy();
});
