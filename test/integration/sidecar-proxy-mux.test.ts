// Integration: weft-mux/1 sessions on real loopback sockets — many channels on one connection,
// per-channel flow control (a paused reader stops only its own channel), END and RESET, the
// connection dying under open channels, a peer breaking the protocol, the channel cap, a peer
// that stops reading the connection itself, and the fall-back to plain connections when the peer does not speak weft-mux/1. Between two real
// sidecars the protocol is exercised by every mTLS test of the proxy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { frameHeader, FrameType } from '../../src/sidecar/proxy/mux-frames.js';
import {
  MAX_CHANNELS,
  MuxSession,
  SESSION_HIGH_WATER,
  WINDOW,
  type MuxChannel,
} from '../../src/sidecar/proxy/mux-session.js';

interface Pair {
  client: MuxSession;
  server: MuxSession;
  accepted: MuxChannel[];
  close(): Promise<void>;
}

/** A client session and a server session on one loopback TCP connection. */
async function pair(onChannel: (ch: MuxChannel) => void = () => {}): Promise<Pair> {
  const accepted: MuxChannel[] = [];
  let server: MuxSession | undefined;
  const listener = net.createServer((socket) => {
    server = new MuxSession(socket, (ch) => {
      accepted.push(ch);
      onChannel(ch);
    });
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const socket = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const client = new MuxSession(socket, undefined, false);
  await once(socket, 'connect');
  client.markConnected();
  while (server === undefined) await new Promise((r) => setImmediate(r));
  return {
    client,
    server,
    accepted,
    close: async () => {
      client.destroy();
      server?.destroy();
      listener.close();
      await once(listener, 'close');
    },
  };
}

/** Resolves on 'close' whatever came before it ('error' included, which events.once rejects on). */
function closed(ch: MuxChannel): Promise<void> {
  return ch.destroyed ? Promise.resolve() : new Promise((resolve) => ch.once('close', () => resolve()));
}

function collect(ch: MuxChannel): { text: () => string; ended: Promise<void> } {
  const parts: Buffer[] = [];
  ch.on('data', (d: Buffer) => parts.push(Buffer.from(d)));
  const ended = new Promise<void>((resolve) => ch.once('end', () => resolve()));
  return { text: () => Buffer.concat(parts).toString('latin1'), ended };
}

test('fifty channels on one connection: each gets its own bytes back, in order', async () => {
  const p = await pair((ch) => {
    ch.on('data', (d: Buffer) => ch.write(Buffer.from(d)));
    ch.on('end', () => ch.end());
  });
  try {
    const channels = Array.from({ length: 50 }, () => p.client.open());
    const got = channels.map(collect);
    channels.forEach((ch, i) => {
      ch.write(`channel ${i} `, 'latin1');
      ch.write('x'.repeat(i * 1000), 'latin1');
      ch.end();
    });
    await Promise.all(got.map((g) => g.ended));
    got.forEach((g, i) => assert.equal(g.text(), `channel ${i} ` + 'x'.repeat(i * 1000)));
    await Promise.all(channels.map(closed));
    assert.equal(p.client.channels.size, 0);
  } finally {
    await p.close();
  }
});

test('a paused reader holds up only its channel, and no more than WINDOW bytes of it are sent', async () => {
  const p = await pair((ch) => {
    if (p2Paused.size === 0) {
      p2Paused.add(ch);
      ch.pause(); // the first channel's reader never reads
    } else ch.on('data', (d: Buffer) => ch.write(Buffer.from(d)));
  });
  const p2Paused = new Set<MuxChannel>();
  try {
    const slow = p.client.open();
    await once(slow, 'connect');
    let flowing = true;
    let sent = 0;
    const chunk = Buffer.alloc(16 * 1024, 1);
    while (flowing && sent < 4 * WINDOW) {
      flowing = slow.write(chunk);
      sent += chunk.length;
    }
    assert.equal(flowing, false, 'the slow channel signals backpressure');
    assert.ok(sent <= WINDOW + chunk.length, `accepted ${sent} bytes before saying stop`);
    // Another channel on the same connection is not held up.
    const fast = p.client.open();
    const got = collect(fast);
    fast.write('still moving', 'latin1');
    while (got.text() !== 'still moving') await new Promise((r) => setTimeout(r, 5));
    // Reading resumes the slow one: it drains.
    const [reader] = [...p2Paused];
    let received = 0;
    reader!.on('data', (d: Buffer) => (received += d.length));
    const drained = once(slow, 'drain');
    reader!.resume();
    await drained;
    while (received < sent) await new Promise((r) => setTimeout(r, 5));
    assert.equal(received, sent);
  } finally {
    await p.close();
  }
});

test('END is a half-close; RESET closes the channel on both sides; the others carry on', async () => {
  const p = await pair();
  try {
    // Three channels: a client session ends once it has none left, as the pool lets it.
    const a = p.client.open();
    const b = p.client.open();
    const c = p.client.open();
    a.write('a', 'latin1');
    b.write('b', 'latin1');
    c.write('c', 'latin1');
    while (p.accepted.length < 3) await new Promise((r) => setImmediate(r));
    const [sa, sb, sc] = p.accepted;
    // The server side keeps its half open after the client's END (as accepted sockets do).
    const aEnd = once(sa!, 'end');
    a.end();
    await aEnd;
    assert.equal(sa!.destroyed, false);
    const aGot = collect(a);
    sa!.end('bye');
    await aGot.ended;
    assert.equal(aGot.text(), 'bye');
    // A reset from the server: the client's channel closes, with an error for whoever listens.
    const errors: Error[] = [];
    b.on('error', (e: Error) => errors.push(e));
    const bClosed = closed(b);
    sb!.destroy();
    await bClosed;
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /reset/);
    const cGot = collect(c);
    sc!.end('ok');
    await cGot.ended;
    assert.equal(cGot.text(), 'ok');
    await closed(c);
    assert.equal(p.client.closed, true, 'the client session ends with its last channel');
  } finally {
    await p.close();
  }
});

test('the connection dying closes every open channel with an error', async () => {
  const p = await pair();
  try {
    const channels = [p.client.open(), p.client.open(), p.client.open()];
    const errors: Error[] = [];
    for (const ch of channels) ch.on('error', (e: Error) => errors.push(e));
    const allClosed = channels.map(closed);
    channels.forEach((ch) => ch.write('x', 'latin1'));
    while (p.accepted.length < 3) await new Promise((r) => setImmediate(r));
    p.server.socket.destroy();
    await Promise.all(allClosed);
    assert.equal(errors.length, 3);
    assert.equal(p.client.closed, true);
  } finally {
    await p.close();
  }
});

test('a peer that sends beyond the credit it was given loses the connection', async () => {
  const p = await pair((ch) => ch.pause());
  try {
    const ch = p.client.open();
    ch.write('x', 'latin1');
    while (p.accepted.length < 1) await new Promise((r) => setImmediate(r));
    const serverGone = once(p.server.socket, 'close');
    // Raw frames past the window, written under the session's feet.
    const data = Buffer.alloc(60 * 1024);
    for (let i = 0; i < 3; i++)
      p.client.socket.write(Buffer.concat([frameHeader(FrameType.Data, ch.id, data.length), data]));
    await serverGone;
    assert.equal(p.server.closed, true);
  } finally {
    await p.close();
  }
});

test(`a peer opening more than ${MAX_CHANNELS} channels gets the extra ones reset`, async () => {
  const p = await pair();
  try {
    const channels = Array.from({ length: MAX_CHANNELS + 1 }, () => p.client.open());
    const last = channels[MAX_CHANNELS]!;
    last.on('error', () => {});
    const lastClosed = closed(last);
    for (const ch of channels) ch.write('x', 'latin1');
    await lastClosed;
    assert.equal(p.server.channels.size, MAX_CHANNELS);
    assert.equal(channels[0]!.destroyed, false);
  } finally {
    await p.close();
  }
});

test('falling back: channels opened before the peer said no become plain connections', async () => {
  // A plain echo server stands for a peer without weft-mux/1.
  const server = net.createServer((s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const sockets: net.Socket[] = [];
  const dial = (): net.Socket => {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    return s;
  };
  try {
    const first = dial();
    const session = new MuxSession(first, undefined, false);
    const channels = [session.open(), session.open()];
    const got = channels.map(collect);
    channels.forEach((ch, i) => ch.write(`plain ${i}`, 'latin1'));
    await once(first, 'connect');
    session.fallBack(dial);
    for (const s of sockets.slice(1)) await once(s, 'connect');
    for (const ch of channels) ch.connectedNow();
    while (got.some((g, i) => g.text() !== `plain ${i}`)) await new Promise((r) => setTimeout(r, 5));
    assert.equal(sockets.length, 2, 'the first channel kept the session socket, the second dialled one');
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, 'close');
  }
});

test('a draining peer finishes its open channels, resets new ones, then ends the connection', async () => {
  const p = await pair();
  try {
    const busy = p.client.open();
    busy.write('first', 'latin1');
    while (p.accepted.length < 1) await new Promise((r) => setImmediate(r));
    p.server.drain();
    const late = p.client.open();
    late.on('error', () => {});
    const lateClosed = closed(late);
    late.write('too late', 'latin1');
    await lateClosed;
    assert.equal(p.accepted.length, 1, 'no channel was accepted while draining');
    assert.equal(p.client.goingAway, true, 'the pool will open new channels elsewhere');
    // The open channel still works both ways, and its end ends the connection.
    const got = collect(busy);
    p.accepted[0]!.end('answer');
    await got.ended;
    assert.equal(got.text(), 'answer');
    const socketClosed = once(p.server.socket, 'close');
    busy.end();
    await socketClosed;
  } finally {
    await p.close();
  }
});

test('a body many windows long crosses one way while nothing goes back: credit flows by itself', async () => {
  let received = 0;
  const p = await pair((ch) => ch.on('data', (d: Buffer) => (received += d.length)));
  try {
    const ch = p.client.open();
    await once(ch, 'connect');
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 64 * WINDOW; // 4 MiB
    for (let sent = 0; sent < total; sent += chunk.length) if (!ch.write(chunk)) await once(ch, 'drain');
    while (received < total) await new Promise((r) => setTimeout(r, 5));
    assert.equal(received, total);
  } finally {
    await p.close();
  }
});

test('a peer that stops reading the connection: what waits to be written stays near the session limit', async () => {
  const N = 400;
  const PER_CHANNEL = 2 * WINDOW;
  const received = new Map<number, number>();
  let total = 0;
  let allIn: () => void = () => {};
  const arrived = new Promise<void>((resolve) => (allIn = resolve));
  const p = await pair((ch) =>
    ch.on('data', (d: Buffer) => {
      received.set(ch.id, (received.get(ch.id) ?? 0) + d.length);
      total += d.length;
      if (total === N * PER_CHANNEL + 'hello'.length) allIn();
    }),
  );
  try {
    // The peer's connection is not read: only the kernel's socket buffers take anything.
    const first = p.client.open();
    first.write('hello', 'latin1');
    while (p.server.channels.size === 0) await new Promise((r) => setImmediate(r));
    p.server.socket.pause();
    // N channels, each with credit for a window: without a session limit, N × WINDOW (25 MiB)
    // would wait in the client's socket once the kernel's buffers are full.
    const channels = Array.from({ length: N }, () => p.client.open());
    await Promise.all(channels.map((ch) => once(ch, 'connect')));
    let peak = 0;
    let blocked = 0;
    const chunk = Buffer.alloc(16 * 1024, 3);
    const allBlocked = new Promise<void>((resolve) => {
      const writers = channels.map(async (ch) => {
        for (let sent = 0; sent < PER_CHANNEL; sent += chunk.length) {
          const more = ch.write(chunk);
          peak = Math.max(peak, p.client.socket.writableLength);
          if (!more) {
            if (++blocked === N) resolve();
            await once(ch, 'drain');
            blocked--;
          }
        }
        ch.end();
      });
      void Promise.all(writers).then(() => resolve());
    });
    await allBlocked;
    // The frames queued this turn are written in the next one.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    peak = Math.max(peak, p.client.socket.writableLength);
    const bound = 2 * SESSION_HIGH_WATER + 2 * WINDOW;
    assert.ok(peak <= bound, `${peak} bytes waited in the client's socket, more than ${bound}`);
    // Reading again, everything arrives, every byte on its channel.
    p.server.socket.resume();
    await arrived;
    for (const ch of channels) assert.equal(received.get(ch.id), PER_CHANNEL, `channel ${ch.id}`);
  } finally {
    await p.close();
  }
});

/** Runs `body` with two connected client channels of a pair whose server drops what it reads. */
async function withTwoChannels(
  body: (p: Pair, a: MuxChannel, b: MuxChannel) => Promise<void>,
): Promise<void> {
  const p = await pair((ch) => ch.on('data', () => undefined));
  try {
    const a = p.client.open();
    const b = p.client.open();
    await Promise.all([once(a, 'connect'), once(b, 'connect')]);
    await body(p, a, b);
  } finally {
    await p.close();
  }
}

/** The end of this event-loop turn (the session's batched flush has run). */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a lone write goes out at once; writes that meet in a turn go out together, and so does the next turn', () =>
  withTwoChannels(async (p, a, b) => {
    const socket = p.client.socket;
    // Quiet: the write reaches the socket before the call returns, its callback a tick later.
    let sent = socket.bytesWritten;
    let called = false;
    a.write('first', 'latin1', () => (called = true));
    assert.ok(socket.bytesWritten > sent, 'a lone write is on the socket at once');
    assert.equal(called, false, 'its callback waits for the next tick');
    await turn();
    assert.equal(called, true);
    // Busy: a second write in the same turn waits for the turn's one write.
    sent = socket.bytesWritten;
    a.write('one', 'latin1');
    const afterFirst = socket.bytesWritten;
    b.write('two', 'latin1');
    assert.ok(afterFirst > sent);
    assert.equal(socket.bytesWritten, afterFirst, 'the second write of a turn is queued');
    await turn();
    assert.ok(socket.bytesWritten > afterFirst, 'and written at the end of the turn');
    // The turn after one that carried two frames batches from its first frame…
    sent = socket.bytesWritten;
    a.write('three', 'latin1');
    assert.equal(socket.bytesWritten, sent, 'after a busy turn, the first write is queued too');
    await turn();
    assert.ok(socket.bytesWritten > sent);
    // …and once a turn carried one frame, writes go out at once again.
    sent = socket.bytesWritten;
    b.write('four', 'latin1');
    assert.ok(socket.bytesWritten > sent, 'after a quiet turn, a lone write is on the socket at once');
    await turn();
  }));

test('write callbacks keep their order when the session fails between an early write and a queued one', () =>
  withTwoChannels(async (p, a, b) => {
    const order: string[] = [];
    a.write('written at once', 'latin1', (err) => order.push(`first ${err ? 'failed' : 'ok'}`));
    b.write('queued', 'latin1', (err) => order.push(`second ${err ? 'failed' : 'ok'}`));
    p.client.destroy(new Error('boom'));
    await turn();
    assert.deepEqual(order, ['first ok', 'second failed']);
  }));

test('a large write (header and data sent apart) counts as one frame: the next lone write still goes out at once', () =>
  withTwoChannels(async (p, a, b) => {
    const socket = p.client.socket;
    a.write(Buffer.alloc(20_000, 1));
    await turn();
    const sent = socket.bytesWritten;
    b.write('small', 'latin1');
    assert.ok(socket.bytesWritten > sent, 'the lone write after a large one is on the socket at once');
    await turn();
  }));
