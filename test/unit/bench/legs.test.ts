// The proxy bench's legs (bench/proxy/legs.ts) from packet lines as tshark prints them: each
// request followed through the hops, and on Weft's multiplexed hop by channel, so that two
// requests sharing one TLS record between the sidecars are still told apart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exchanges, legsFromPackets, muxMessages } from '../../../bench/proxy/legs.js';
import { FrameType, frameHeader } from '../../../src/sidecar/proxy/mux-frames.js';

const ports = { outbound: 1000, inbound: 2000, upstream: 3000 };
/** A packet line: time (µs after a base), tcp stream, source and destination ports. */
const pkt = (us: number, stream: number, src: number, dst: number): string =>
  `${(100 + us / 1e6).toFixed(6)}\t${stream}\t${src}\t${dst}`;

function dataFrame(channel: number, text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const f = frameHeader(FrameType.Data, channel, body.length, body.length);
  body.copy(f, 9);
  return f;
}
/** A hex dump as tshark's -x prints one: offset, up to 16 bytes, their ASCII. */
function hexDump(title: string, b: Buffer): string {
  const lines = [`${title} (${b.length} bytes):`];
  for (let off = 0; off < b.length; off += 16) {
    const row = [...b.subarray(off, off + 16)];
    const hex = row.map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = row.map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${off.toString(16).padStart(4, '0')}  ${hex.padEnd(47)}   ${ascii}`);
  }
  return lines.join('\n');
}
/** A packet of the multiplexed hop as `tshark -P -x` prints it: summary, frame, each record decrypted. */
const record = (us: number, stream: number, src: number, dst: number, ...records: Buffer[]): string =>
  [
    pkt(us, stream, src, dst).replace(/\t/g, ' '),
    '',
    hexDump('Frame', Buffer.alloc(66 + records.reduce((n, r) => n + r.length + 22, 0), 0x17)),
    ...records.map((r) => hexDump('Decrypted TLS', r)),
    '',
  ].join('\n');

// Two clients (streams 0 and 1); both requests leave the outbound hop in one TLS record on the
// multiplexed connection (stream 2, channels 1 and 3); the inbound hop sends each to the upstream
// on a connection of its own (streams 3 and 4); the answers come back in the other order.
const plain = [
  pkt(0, 0, 50001, 1000), // A into the outbound hop
  pkt(100, 1, 50002, 1000), // B
  pkt(400, 3, 41000, 3000), // A into the upstream
  pkt(500, 4, 41001, 3000), // B
  pkt(800, 3, 3000, 41000), // A's answer out of the upstream
  pkt(900, 4, 3000, 41001), // B's
  pkt(1300, 1, 1000, 50002), // B's answer out of the outbound hop
  pkt(1400, 0, 1000, 50001), // A's
].join('\n');
const decrypted = [
  record(300, 2, 40000, 2000, Buffer.concat([dataFrame(1, 'GET /a'), dataFrame(3, 'GET /b')])),
  // Two records in one packet: a response and a credit.
  record(1100, 2, 2000, 40000, dataFrame(3, 'HTTP/1.1 200 b'), frameHeader(FrameType.Credit, 3, 16384)),
  // A frame cut across two records is one message.
  record(1200, 2, 2000, 40000, dataFrame(1, 'HTTP/1.1 200 a').subarray(0, 5)),
  record(1210, 2, 2000, 40000, dataFrame(1, 'HTTP/1.1 200 a').subarray(5)),
].join('\n');

test('legs: requests sharing a record on the multiplexed hop are matched by channel', () => {
  const l = legsFromPackets(exchanges(`${plain}\n${muxMessages(decrypted)}`), ports);
  assert.equal(l.requests, 2);
  assert.equal(l.unmatched, 0);
  // A: 0.3 / 0.1 / 0.4 / 0.41 / 0.19 ms; B: 0.2 / 0.2 / 0.4 / 0.2 / 0.2 ms.
  assert.deepEqual(
    Object.values(l.legs).map((p) => [p.p50Ms, p.p99Ms]),
    [
      [0.2, 0.3],
      [0.1, 0.2],
      [0.4, 0.4],
      [0.2, 0.41],
      [0.19, 0.2],
    ],
  );
  assert.deepEqual([l.total.p50Ms, l.total.p99Ms], [1.2, 1.4]);
});

test('legs: the same capture read per connection, without channels, follows only one request', () => {
  // What the bench did before it decrypted the hop: one message per direction change, so B's
  // request has no message of its own on the hop between the sidecars.
  const perConnection = [
    plain,
    pkt(300, 2, 40000, 2000),
    pkt(1100, 2, 2000, 40000),
    pkt(1200, 2, 2000, 40000),
  ].join('\n');
  const l = legsFromPackets(exchanges(perConnection), ports);
  assert.equal(l.requests, 1);
});

test('legs: requests into the outbound hop before `from` (a warm-up) are left out', () => {
  const l = legsFromPackets(exchanges(`${plain}\n${muxMessages(decrypted)}`), ports, (100 + 50 / 1e6) * 1000);
  assert.equal(l.requests, 1);
  // B, matched as before: its hops are not taken by A's being left out.
  assert.deepEqual(
    Object.values(l.legs).map((p) => p.p50Ms),
    [0.2, 0.2, 0.4, 0.2, 0.2],
  );
});
