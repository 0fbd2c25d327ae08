// The xDS config source: node classes (namespace × proxyless or proxy), per-class caching with
// object identity kept for unchanged resources, and a bounded class cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshState } from '../../../src/control-plane/mesh-state.js';
import { MeshXdsSource, nodeView, sidecarView } from '../../../src/control-plane/xds-source.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { silentLogger } from '../../../src/log.js';
import { decodeResource, encodeResource } from '../../../src/xds/codec.js';
import { TypeUrl, type NodeInfo } from '../../../src/xds/types.js';

function node(metadata: Record<string, unknown>, userAgentName = 'envoy'): NodeInfo {
  return { id: 'n', cluster: '', metadata, userAgentName, userAgentVersion: '' };
}

test('nodeView: namespace from NAMESPACE; proxyless from WEFT_PROXY_TYPE, else a gRPC user agent', () => {
  assert.deepEqual(nodeView(node({})), { namespace: 'default', proxyless: false });
  assert.deepEqual(nodeView(node({ NAMESPACE: 'shop' }, 'gRPC Node Pure JS')), {
    namespace: 'shop',
    proxyless: true,
  });
  assert.deepEqual(nodeView(node({ WEFT_PROXY_TYPE: 'proxyless-grpc' })), {
    namespace: 'default',
    proxyless: true,
  });
  assert.deepEqual(nodeView(node({ WEFT_PROXY_TYPE: 'sidecar' }, 'gRPC Go')), {
    namespace: 'default',
    proxyless: false,
  });
});

/** Commits one put and waits until the mesh state has seen it. */
async function putAndWait(store: MemoryStore, state: MeshState, key: string, value: object): Promise<void> {
  const changed = new Promise((r) => state.once('change', r));
  await store.txn([{ type: 'put', key, value: JSON.stringify(value) }]);
  await changed;
}

async function stateWith(store: MemoryStore): Promise<MeshState> {
  const w = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'a-1', namespace: 'default', labels: { app: 'a' } },
    spec: {
      address: '10.0.0.1',
      ports: [{ name: 'http', port: 80, protocol: 'HTTP' }],
      serviceAccount: 'default',
    },
  };
  await store.txn([{ type: 'put', key: '/weft/resources/Workload/default/a-1', value: JSON.stringify(w) }]);
  return MeshState.load(store, silentLogger());
}

test('one compile per class and revision; unchanged resources keep their identity across revisions', async () => {
  const store = new MemoryStore();
  const state = await stateWith(store);
  const source = new MeshXdsSource(state);
  try {
    const first = source.resourcesFor(node({}));
    assert.equal(source.resourcesFor(node({})).resources, first.resources, 'same set for the same class');
    assert.notEqual(
      source.resourcesFor(node({}, 'gRPC Node')).resources,
      first.resources,
      'proxyless is its own class',
    );

    await putAndWait(store, state, '/weft/resources/Workload/default/b-1', {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'Workload',
      metadata: { name: 'b-1', namespace: 'default', labels: { app: 'b' } },
      spec: {
        address: '10.0.0.2',
        ports: [{ name: 'http', port: 81, protocol: 'HTTP' }],
        serviceAccount: 'default',
      },
    });
    const second = source.resourcesFor(node({}));
    assert.notEqual(second.resources, first.resources);
    const cla = (set: typeof first.resources) =>
      set.get(TypeUrl.ClusterLoadAssignment)!.get('outbound|http||a.default');
    assert.equal(cla(second.resources), cla(first.resources), 'unchanged resource, same object');
    assert.ok(second.resources.get(TypeUrl.ClusterLoadAssignment)!.has('outbound|http||b.default'));
  } finally {
    state.close();
    await store.close();
  }
});

test('classes nobody asks for are dropped at the next change, and at most 256 are kept', async () => {
  const store = new MemoryStore();
  const state = await stateWith(store);
  const source = new MeshXdsSource(state);
  try {
    for (let i = 0; i < 300; i++) source.resourcesFor(node({ NAMESPACE: `ns-${i}` }));
    assert.equal(source.classCount(), 256);
    const bump = (): Promise<void> => putAndWait(store, state, '/weft/resources/x', {});
    await bump();
    source.resourcesFor(node({ NAMESPACE: 'ns-299' }));
    await bump();
    assert.equal(source.classCount(), 1, 'only the class asked for since the previous change is kept');
  } finally {
    state.close();
    await store.close();
  }
});

test('sidecar node metadata becomes the sidecar view; anything malformed gives none', () => {
  const md = {
    WEFT_PROXY_TYPE: 'sidecar',
    NAMESPACE: 'shop',
    OUTBOUND_ADDR: '127.0.0.1:15001',
    INBOUND_ADDR: '[::]:15006',
    APP_PORT: '8080',
    APP_PROTOCOL: 'grpc',
    TCP_UPSTREAMS: 'db:5432=15432,cache.infra:6379=16379',
  };
  assert.deepEqual(nodeView(node(md)).sidecar, {
    outbound: { host: '127.0.0.1', port: 15001 },
    inbound: { host: '::', port: 15006, appPort: 8080, protocol: 'GRPC' },
    tcpUpstreams: [
      { service: 'db', port: 5432, localPort: 15432 },
      { service: 'cache.infra', port: 6379, localPort: 16379 },
    ],
  });
  assert.equal(sidecarView({ ...md, APP_PORT: '0' }), undefined);
  assert.equal(sidecarView({ ...md, OUTBOUND_ADDR: 'nowhere' }), undefined);
  assert.equal(sidecarView({ ...md, APP_PROTOCOL: 'SMTP' }), undefined);
  assert.equal(sidecarView({ ...md, TCP_UPSTREAMS: 'db=1' }), undefined);
  assert.equal(nodeView(node({ ...md, WEFT_PROXY_TYPE: 'proxyless-grpc' })).sidecar, undefined);
  // No app port: a client-only workload (a batch job) has no inbound side.
  assert.deepEqual(sidecarView({ ...md, APP_PORT: undefined, INBOUND_ADDR: undefined, TCP_UPSTREAMS: '' }), {
    outbound: { host: '127.0.0.1', port: 15001 },
    tcpUpstreams: [],
  });
});

test('SDS: the trust bundle is the Secret ROOTCA, never a private key; a new bundle is pushed', async () => {
  const store = new MemoryStore();
  const state = await stateWith(store);
  const source = new MeshXdsSource(state, { trustDomain: 'weft.local' });
  let changes = 0;
  const off = source.onChange(() => changes++);
  try {
    assert.equal(source.resourcesFor(node({})).resources.get(TypeUrl.Secret), undefined, 'no bundle yet');
    source.setTrustBundle('-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n');
    assert.equal(changes, 1);
    const secrets = source.resourcesFor(node({ WEFT_PROXY_TYPE: 'sidecar' })).resources.get(TypeUrl.Secret);
    assert.deepEqual([...(secrets?.keys() ?? [])], ['ROOTCA']);
    const secret = secrets!.get('ROOTCA')!;
    assert.ok(!JSON.stringify(secret).includes('private_key'), 'no key material in SDS');
    // It encodes as Envoy's Secret, with the PEM as inline bytes.
    const decoded = decodeResource(TypeUrl.Secret, encodeResource(TypeUrl.Secret, secret)) as {
      validation_context: { trusted_ca: { inline_bytes: string } };
    };
    assert.match(
      Buffer.from(decoded.validation_context.trusted_ca.inline_bytes, 'base64').toString(),
      /BEGIN CERTIFICATE/,
    );
    source.setTrustBundle('-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n');
    assert.equal(changes, 1, 'the same bundle again is no change');
    // The same class asked again: the same set object (the ADS server diffs sets by identity),
    // until the bundle changes.
    const again = source.resourcesFor(node({ WEFT_PROXY_TYPE: 'sidecar' })).resources;
    assert.equal(source.resourcesFor(node({ WEFT_PROXY_TYPE: 'sidecar' })).resources, again);
    source.setTrustBundle('-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n');
    const rotated = source.resourcesFor(node({ WEFT_PROXY_TYPE: 'sidecar' })).resources;
    assert.notEqual(rotated, again);
    assert.notEqual(rotated.get(TypeUrl.Secret), again.get(TypeUrl.Secret));
  } finally {
    off();
    state.close();
  }
});
