// Integration: gRPC (h2c prior knowledge) through two proxies, with a real grpc-js client and
// server: unary and all three streaming kinds (client, server, bidirectional), headers and
// trailers (grpc-status, grpc-message, custom trailing metadata) preserved, and cancellation
// propagated in both directions.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { closeServer, listen, startMesh, type Mesh } from './sidecar-proxy-helpers.js';

interface Msg {
  text: string;
}
const serialize = (v: Msg): Buffer => Buffer.from(JSON.stringify(v));
const deserialize = (b: Buffer): Msg => JSON.parse(b.toString()) as Msg;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/weft.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: serialize,
  requestDeserialize: deserialize,
  responseSerialize: serialize,
  responseDeserialize: deserialize,
});
const service = {
  echo: method('Echo', false, false),
  fail: method('Fail', false, false),
  chat: method('Chat', true, true),
  collect: method('Collect', true, false),
  count: method('Count', false, true),
} satisfies grpc.ServiceDefinition;

type EchoClient = grpc.Client & {
  echo(
    req: Msg,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, res?: Msg) => void,
  ): grpc.ClientUnaryCall;
  fail(req: Msg, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientUnaryCall;
  chat(): grpc.ClientDuplexStream<Msg, Msg>;
  collect(cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientWritableStream<Msg>;
  count(req: Msg): grpc.ClientReadableStream<Msg>;
};
const EchoClientCtor = grpc.makeGenericClientConstructor(service, 'Echo') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => EchoClient;

let server: grpc.Server;
let mesh: Mesh;
let client: EchoClient;
let serverSawCancel: Promise<void>;
let resolveServerCancel: () => void;

before(async () => {
  serverSawCancel = new Promise((r) => (resolveServerCancel = r));
  server = new grpc.Server();
  server.addService(service, {
    echo(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'from-server');
      cb(
        null,
        { text: `echo: ${call.request.text} (${String(call.metadata.get('x-client')[0] ?? '')})` },
        trailer,
      );
    },
    fail(_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const md = new grpc.Metadata();
      md.set('x-why', 'because');
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md });
    },
    chat(call: grpc.ServerDuplexStream<Msg, Msg>) {
      call.on('cancelled', () => resolveServerCancel());
      call.on('data', (m: Msg) => call.write({ text: m.text.toUpperCase() }));
      call.on('end', () => {
        const trailer = new grpc.Metadata();
        trailer.set('x-count', 'done');
        call.end(trailer);
      });
    },
    // Client streaming: every message the client sends, answered once after it half-closes.
    collect(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text));
      call.on('end', () => {
        const trailer = new grpc.Metadata();
        trailer.set('x-received', String(texts.length));
        cb(null, { text: texts.join(',') }, trailer);
      });
    },
    // Server streaming: one request, then as many answers as it asks for.
    count(call: grpc.ServerWritableStream<Msg, Msg>) {
      const n = Number(call.request.text);
      for (let i = 1; i <= n; i++) call.write({ text: String(i) });
      const trailer = new grpc.Metadata();
      trailer.set('x-sent', String(n));
      call.end(trailer);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  mesh = await startMesh(port, 'http2');
  client = new EchoClientCtor(`127.0.0.1:${mesh.port}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': 'svc:7070',
  });
});

after(async () => {
  client.close();
  await mesh.close();
  server.forceShutdown();
});

test('unary call with request metadata, response and trailing metadata', async () => {
  const md = new grpc.Metadata();
  md.set('x-client', 'c1');
  let trailers: grpc.Metadata | undefined;
  const res = await new Promise<Msg>((resolve, reject) => {
    const call = client.echo({ text: 'hi' }, md, (err, r) => (err ? reject(err) : resolve(r!)));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
  assert.equal(res.text, 'echo: hi (c1)');
  await new Promise((r) => setImmediate(r));
  assert.equal(trailers?.get('x-trailer')[0], 'from-server');
});

test('a non-OK grpc-status, its message and trailing metadata arrive intact', async () => {
  const err = await new Promise<grpc.ServiceError>((resolve) =>
    client.fail({ text: 'x' }, (e) => resolve(e!)),
  );
  assert.equal(err.code, grpc.status.NOT_FOUND);
  assert.equal(err.details, 'no such thing');
  assert.equal(err.metadata.get('x-why')[0], 'because');
});

test('bidirectional streaming with trailers', async () => {
  const call = client.chat();
  const got: string[] = [];
  call.on('data', (m: Msg) => got.push(m.text));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  for (const t of ['a', 'b', 'c']) call.write({ text: t });
  // Interleaved: the server's answers arrive while the client's side is still open.
  while (got.length < 3) await once(call, 'data');
  call.end();
  const s = await status;
  assert.deepEqual(got, ['A', 'B', 'C']);
  assert.equal(s.code, grpc.status.OK);
  assert.equal(s.metadata.get('x-count')[0], 'done');
});

test('client streaming: many messages, half-close, one answer with trailers', async () => {
  let trailers: grpc.Metadata | undefined;
  let answer: (v: Msg) => void;
  let failed: (e: Error) => void;
  const res = new Promise<Msg>((resolve, reject) => ((answer = resolve), (failed = reject)));
  const call = client.collect((err, r) => (err ? failed(err) : answer(r!)));
  call.on('status', (st: grpc.StatusObject) => (trailers = st.metadata));
  const sent = Array.from({ length: 50 }, (_, i) => `m${i}`);
  for (const t of sent) call.write({ text: t });
  call.end();
  assert.equal((await res).text, sent.join(','));
  await new Promise((r) => setImmediate(r));
  assert.equal(trailers?.get('x-received')[0], '50');
});

test('server streaming: one request, many answers in order, then trailers', async () => {
  const call = client.count({ text: '200' });
  const got: string[] = [];
  call.on('data', (m: Msg) => got.push(m.text));
  // A failed call emits 'error' (and would crash the file without a listener) before 'status'.
  const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
    call.on('error', reject);
    call.on('status', resolve);
  });
  assert.equal(status.code, grpc.status.OK);
  assert.equal(status.metadata.get('x-sent')[0], '200');
  assert.deepEqual(
    got,
    Array.from({ length: 200 }, (_, i) => String(i + 1)),
  );
});

test('client cancellation reaches the server through both proxies', async () => {
  const call = client.chat();
  call.on('error', () => {});
  call.write({ text: 'first' });
  await once(call, 'data');
  call.cancel();
  await serverSawCancel;
  // Both proxies let go of the stream.
  for (const p of [mesh.outbound, mesh.inbound]) {
    const deadline = Date.now() + 2_000;
    while (p.stats().clusters.some((c) => c.activeRequests > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(
      p.stats().clusters.reduce((n, c) => n + c.activeRequests, 0),
      0,
    );
  }
});

test('an upstream RST_STREAM reaches the client as a reset of its stream', async () => {
  // A raw HTTP/2 app that starts answering, then cancels the stream.
  const app = http2.createServer();
  app.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.write(Buffer.from([0, 0, 0, 0, 0]), () => stream.close(http2.constants.NGHTTP2_CANCEL));
  });
  const appPort = await listen(app);
  const m2 = await startMesh(appPort, 'http2');
  const session = http2.connect(`http://127.0.0.1:${m2.port}`);
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/weft.test.Echo/Chat',
      ':authority': 'svc',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => {});
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    stream.resume();
    await once(stream, 'close');
    assert.equal(stream.rstCode, http2.constants.NGHTTP2_CANCEL);
  } finally {
    session.destroy();
    await m2.close();
    await closeServer(app);
  }
});
