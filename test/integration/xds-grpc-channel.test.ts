// Integration: Weft's own gRPC client channel (the sidecar's xDS transport) against a real
// @grpc/grpc-js server, so that both ends are not ours: message framing across HTTP/2 frames,
// statuses from trailers and from trailers-only answers, cancellation seen by the server, a
// refused connection, the message size limit, and mutual TLS with a renewed client certificate.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { GrpcChannel, GrpcStatus, type GrpcCall, type StatusEvent } from '../../src/xds/grpc-channel.js';
import { uriSans } from '../../src/ca/spiffe-id.js';
import { memoryCa } from '../helpers/identity.js';
import { freePort } from '../helpers/weft-process.js';

const ECHO = '/test.Echo/Chat';
const pass = (b: Buffer): Buffer => b;

/** Echoes each message; a message starting with a command byte does something else instead. */
function echoService(seen: { cancelled: number; peers: string[] }): grpc.UntypedServiceImplementation {
  return {
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const cert = call.getAuthContext().sslPeerCertificate;
      seen.peers.push(cert ? (uriSans(cert)[0] ?? '?') : 'none');
      call.on('cancelled', () => seen.cancelled++);
      call.on('data', (m: Buffer) => {
        const text = m.toString();
        if (text === 'fail') {
          call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no: 100% denied ✓' });
        } else if (text.startsWith('big:')) {
          call.write(Buffer.alloc(Number(text.slice(4)), 7));
        } else if (text === 'end') {
          call.end();
        } else {
          call.write(m);
        }
      });
      call.on('end', () => call.end());
    },
  };
}

const definition: grpc.ServiceDefinition = {
  Chat: {
    path: ECHO,
    requestStream: true,
    responseStream: true,
    requestSerialize: pass,
    requestDeserialize: pass,
    responseSerialize: pass,
    responseDeserialize: pass,
  },
};

async function startServer(
  credentials: grpc.ServerCredentials,
  seen: { cancelled: number; peers: string[] },
): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  server.addService(definition, echoService(seen));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

/** Collects a call's messages until its status. */
function collect(call: GrpcCall): Promise<{ messages: Buffer[]; status: StatusEvent }> {
  const messages: Buffer[] = [];
  call.on('message', (m) => messages.push(m));
  return once(call, 'status').then(([status]) => ({ messages, status: status as StatusEvent }));
}

const seen = { cancelled: 0, peers: [] as string[] };
let plain: { server: grpc.Server; address: string };
const channels: GrpcChannel[] = [];
const servers: grpc.Server[] = [];

function channel(opts: ConstructorParameters<typeof GrpcChannel>[0]): GrpcChannel {
  const c = new GrpcChannel(opts);
  channels.push(c);
  return c;
}

before(async () => {
  plain = await startServer(grpc.ServerCredentials.createInsecure(), seen);
  servers.push(plain.server);
});

after(() => {
  for (const c of channels) c.close();
  for (const s of servers) s.forceShutdown();
});

test('messages go both ways, and the server ending the call gives OK', async () => {
  const call = channel({ address: plain.address }).bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('one'));
  call.write(new Uint8Array(0));
  call.write(Buffer.from('three'));
  call.write(Buffer.from('end'));
  const { messages, status } = await result;
  assert.deepEqual(
    messages.map((m) => m.toString()),
    ['one', '', 'three'],
  );
  assert.deepEqual(status, { code: GrpcStatus.OK, details: 'OK' });
});

test('a 5 MiB message spread over many HTTP/2 frames arrives whole, in order with the next', async () => {
  const call = channel({ address: plain.address }).bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from(`big:${5 * 1024 * 1024}`));
  call.write(Buffer.from('after'));
  call.write(Buffer.from('end'));
  const { messages, status } = await result;
  assert.equal(status.code, GrpcStatus.OK, status.details);
  assert.equal(messages.length, 2);
  assert.equal(messages[0]!.length, 5 * 1024 * 1024);
  assert.ok(messages[0]!.every((b) => b === 7));
  assert.equal(messages[1]!.toString(), 'after');
});

test("the server's error status and its percent-encoded message come through", async () => {
  const call = channel({ address: plain.address }).bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('fail'));
  const { status } = await result;
  assert.deepEqual(status, { code: GrpcStatus.PERMISSION_DENIED, details: 'no: 100% denied ✓' });
});

test('an unknown method is UNIMPLEMENTED (a trailers-only answer)', async () => {
  const call = channel({ address: plain.address }).bidi('/test.Echo/Nope');
  const { status } = await collect(call);
  assert.equal(status.code, GrpcStatus.UNIMPLEMENTED, status.details);
});

test('cancel() ends the call on both sides', async () => {
  const before = seen.cancelled;
  const call = channel({ address: plain.address }).bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('hello'));
  await once(call, 'message');
  call.cancel();
  const { status } = await result;
  assert.equal(status.code, GrpcStatus.CANCELLED);
  const deadline = Date.now() + 5000;
  while (seen.cancelled === before && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(seen.cancelled, before + 1, 'the server did not see the cancellation');
});

test('nothing listening: UNAVAILABLE; the channel connects again once something listens', async () => {
  const port = await freePort();
  const ch = channel({ address: `127.0.0.1:${port}` });
  const first = await collect(ch.bidi(ECHO));
  assert.equal(first.status.code, GrpcStatus.UNAVAILABLE, first.status.details);
  const server = new grpc.Server();
  servers.push(server);
  server.addService(definition, echoService(seen));
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  const call = ch.bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('back'));
  call.write(Buffer.from('end'));
  const second = await result;
  assert.deepEqual(
    second.messages.map((m) => m.toString()),
    ['back'],
  );
});

test('a message over the size limit ends the call RESOURCE_EXHAUSTED', async () => {
  const call = channel({ address: plain.address, maxMessageBytes: 1000 }).bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('big:1001'));
  const { status, messages } = await result;
  assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.match(status.details, /1001 bytes, more than the 1000 allowed/);
  assert.equal(messages.length, 0);
});

test('mutual TLS 1.3: the server sees our SVID, and a renewed SVID is used on the next connection', async () => {
  const { bundle, issue } = await memoryCa();
  const serverId = await issue('server');
  const tlsServer = await startServer(
    grpc.ServerCredentials.createSsl(
      Buffer.from(bundle),
      [{ private_key: Buffer.from(serverId.key), cert_chain: Buffer.from(serverId.cert) }],
      true,
    ),
    seen,
  );
  servers.push(tlsServer.server);
  let current = await issue('first');
  const checked: string[] = [];
  const ch = channel({
    address: tlsServer.address,
    tls: () => ({
      ca: bundle,
      key: current.key,
      cert: current.cert,
      servername: 'weft.local',
      checkServerIdentity: (_host, cert) => {
        checked.push(uriSans(cert)[0] ?? '');
        return undefined;
      },
    }),
  });
  const talk = async (): Promise<string[]> => {
    const call = ch.bidi(ECHO);
    const result = collect(call);
    call.write(Buffer.from('hi'));
    call.write(Buffer.from('end'));
    const { messages, status } = await result;
    assert.equal(status.code, GrpcStatus.OK, status.details);
    return messages.map((m) => m.toString());
  };
  const peersBefore = seen.peers.length;
  assert.deepEqual(await talk(), ['hi']);
  current = await issue('second');
  assert.deepEqual(await talk(), ['hi']); // same connection: still the first certificate
  ch.close();
  const again = channel({ address: tlsServer.address, tls: ch['opts'].tls! });
  const call = again.bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('end'));
  assert.equal((await result).status.code, GrpcStatus.OK);
  assert.deepEqual(seen.peers.slice(peersBefore), [
    'spiffe://weft.local/ns/default/sa/first',
    'spiffe://weft.local/ns/default/sa/first',
    'spiffe://weft.local/ns/default/sa/second',
  ]);
  assert.deepEqual([...new Set(checked)], ['spiffe://weft.local/ns/default/sa/server']);

  // No client certificate: the server (which requires one) refuses the connection.
  const anonymous = channel({
    address: tlsServer.address,
    tls: { ca: bundle, servername: 'weft.local', checkServerIdentity: () => undefined },
  });
  const refused = await collect(anonymous.bidi(ECHO));
  assert.equal(refused.status.code, GrpcStatus.UNAVAILABLE, refused.status.details);
});

/** A raw HTTP/2 server whose stream handler misbehaves as the test needs. */
async function rawH2(onStream: (stream: http2.ServerHttp2Stream) => void): Promise<string> {
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    stream.on('error', () => {}); // the resets these servers make come back as stream errors
    onStream(stream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  rawServers.push(server);
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}
const rawServers: http2.Http2Server[] = [];
after(() => {
  for (const s of rawServers) s.close();
});

test('a call that cannot start ends UNAVAILABLE instead of throwing (credentials that fail, a bad key)', async () => {
  const throwing = channel({
    address: plain.address,
    tls: () => {
      throw new Error('the sidecar has no SVID yet');
    },
  });
  const a = await collect(throwing.bidi(ECHO));
  assert.deepEqual(a.status, { code: GrpcStatus.UNAVAILABLE, details: 'the sidecar has no SVID yet' });
  const badKey = channel({ address: plain.address, tls: { ca: 'not a pem', key: 'nope', cert: 'nope' } });
  const b = await collect(badKey.bidi(ECHO));
  assert.equal(b.status.code, GrpcStatus.UNAVAILABLE, b.status.details);
});

test('a server that accepts but never speaks HTTP/2: UNAVAILABLE after the connect timeout', async (t) => {
  const silent = net.createServer(() => {});
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => {
    silent.close();
  });
  const sockets: net.Socket[] = [];
  silent.on('connection', (s) => sockets.push(s));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const ch = channel({
    address: `127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
    connectTimeoutMs: 300,
  });
  const started = Date.now();
  const { status } = await collect(ch.bidi(ECHO));
  assert.equal(status.code, GrpcStatus.UNAVAILABLE, status.details);
  assert.match(status.details, /within 300 ms/);
  assert.ok(Date.now() - started < 5000);
});

test('a connection that goes silent while a call is open: the keepalive PING ends the call UNAVAILABLE', async (t) => {
  // A TCP relay that can be frozen: bytes stop flowing both ways, as when a host vanishes.
  let frozen = false;
  const relay = net.createServer((down) => {
    const up = net.connect(Number(plain.address.split(':')[1]), '127.0.0.1');
    down.on('data', (d) => void (frozen || up.write(d)));
    up.on('data', (d) => void (frozen || down.write(d)));
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    t.after(() => {
      down.destroy();
      up.destroy();
    });
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.after(() => {
    relay.close();
  });
  const ch = channel({ address: `127.0.0.1:${(relay.address() as net.AddressInfo).port}`, keepaliveMs: 200 });
  const call = ch.bidi(ECHO);
  const result = collect(call);
  call.write(Buffer.from('before'));
  await once(call, 'message');
  frozen = true;
  const { status, messages } = await result;
  assert.equal(messages[0]!.toString(), 'before');
  assert.equal(status.code, GrpcStatus.UNAVAILABLE, status.details);
  assert.match(status.details, /PING/);
});

test('statuses as PROTOCOL-HTTP2 says: a reset, a message cut short, a body that is not gRPC', async () => {
  const reset = await rawH2((s) => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  assert.equal((await collect(channel({ address: reset }).bidi(ECHO))).status.code, GrpcStatus.INTERNAL);

  const cut = await rawH2((s) => {
    s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
    const half = Buffer.from([0, 0, 0, 0, 10, 1, 2, 3]); // says 10 bytes, carries 3
    s.end(half);
  });
  const c = await collect(channel({ address: cut }).bidi(ECHO));
  assert.deepEqual(c.status, { code: GrpcStatus.INTERNAL, details: 'the stream ended inside a message' });

  const html = await rawH2((s) => {
    s.respond({ ':status': 200, 'content-type': 'text/html' });
    s.end('<html>not grpc</html>');
  });
  const h = await collect(channel({ address: html }).bidi(ECHO));
  assert.equal(h.status.code, GrpcStatus.UNKNOWN);
  assert.match(h.status.details, /not a gRPC answer/);
  assert.equal(h.messages.length, 0);

  const unavailable = await rawH2((s) => {
    s.respond({ ':status': 503, 'grpc-status': '8', 'grpc-message': 'slow%20down' }, { endStream: true });
  });
  const u = await collect(channel({ address: unavailable }).bidi(ECHO));
  assert.deepEqual(u.status, { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'slow down' });
});
