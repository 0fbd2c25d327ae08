// Fuzz test of the weft-mux/1 frame reader, which reads what a peer sends. Valid frames, however
// the byte stream is cut into reads, come out as written; any bytes at all give frames or a
// MuxProtocolError, never another exception. The seeds run every time as a regression suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameReader,
  FrameType,
  frameHeader,
  MAX_FRAME_DATA,
  MuxProtocolError,
  type FrameSink,
} from '../../../../src/sidecar/proxy/mux-frames.js';

type Frame = [type: FrameType, channel: number, value: number | string];

function recorder(): { sink: FrameSink; frames: Frame[] } {
  const frames: Frame[] = [];
  return {
    frames,
    sink: {
      onData: (c, d) => frames.push([FrameType.Data, c, d.toString('latin1')]),
      onEnd: (c) => frames.push([FrameType.End, c, 0]),
      onReset: (c) => frames.push([FrameType.Reset, c, 0]),
      onCredit: (c, n) => frames.push([FrameType.Credit, c, n]),
    },
  };
}

function encode(frames: Frame[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, channel, value] of frames) {
    if (type === FrameType.Data) {
      const data = Buffer.from(value as string, 'latin1');
      parts.push(frameHeader(type, channel, data.length), data);
    } else parts.push(frameHeader(type, channel, type === FrameType.Credit ? (value as number) : 0));
  }
  return Buffer.concat(parts);
}

function readAll(bytes: Buffer, cuts: number[]): Frame[] {
  const { sink, frames } = recorder();
  const reader = new FrameReader(sink);
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b)) {
    reader.push(bytes.subarray(at, cut));
    at = cut;
  }
  reader.push(bytes.subarray(at));
  return frames;
}

const SEEDS: Frame[][] = [
  [[FrameType.Data, 1, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n']],
  [
    [FrameType.Data, 1, 'x'],
    [FrameType.Data, 2, 'y'],
    [FrameType.Credit, 1, 65536],
    [FrameType.End, 2, 0],
    [FrameType.Reset, 1, 0],
  ],
  [[FrameType.Data, 4294967295, 'z'.repeat(1000)]],
];

test('seed frames come out as written, cut into reads at every byte', () => {
  for (const seed of SEEDS) {
    const bytes = encode(seed);
    for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(readAll(bytes, [cut]), seed);
  }
});

test('a frame no sidecar sends is a MuxProtocolError', () => {
  const bad: Array<[string, Buffer]> = [
    ['channel 0', frameHeader(FrameType.Data, 0, 1)],
    ['empty DATA', frameHeader(FrameType.Data, 1, 0)],
    ['DATA over the limit', frameHeader(FrameType.Data, 1, MAX_FRAME_DATA + 1)],
    ['END with a length', frameHeader(FrameType.End, 1, 3)],
    ['RESET with a length', frameHeader(FrameType.Reset, 1, 3)],
    ['CREDIT of 0', frameHeader(FrameType.Credit, 1, 0)],
    ['unknown type', Buffer.from([9, 0, 0, 0, 1, 0, 0, 0, 0])],
  ];
  for (const [what, bytes] of bad)
    assert.throws(() => new FrameReader(recorder().sink).push(bytes), MuxProtocolError, what);
});

const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.tuple(
    fc.constant(FrameType.Data),
    fc.integer({ min: 1, max: 2 ** 32 - 1 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).map((s) => Buffer.from(s).toString('latin1')),
  ),
  fc.tuple(fc.constant(FrameType.End), fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.constant(0)),
  fc.tuple(fc.constant(FrameType.Reset), fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.constant(0)),
  fc.tuple(
    fc.constant(FrameType.Credit),
    fc.integer({ min: 1, max: 2 ** 32 - 1 }),
    fc.integer({ min: 1, max: 2 ** 32 - 1 }),
  ),
) as fc.Arbitrary<Frame>;

test('any valid frames, cut anywhere, come out as written (property)', () => {
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 20 }),
      fc.array(fc.nat(7000), { maxLength: 8 }),
      (frames, cuts) => {
        assert.deepEqual(readAll(encode(frames), cuts), frames);
      },
    ),
    { numRuns: 1000 },
  );
});

test('any bytes give frames or a MuxProtocolError, nothing else (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 4 }), (bytes, cuts) => {
      try {
        readAll(Buffer.from(bytes), cuts);
      } catch (err) {
        assert.ok(err instanceof MuxProtocolError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});
