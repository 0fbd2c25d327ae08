// The frames of `weft-mux/1`, the protocol two Weft sidecars may speak on their mTLS connection
// (chosen by ALPN): HTTP/1.1 byte streams on numbered channels of one connection, so that many
// requests in flight share TLS records, system calls and the peer's wake-ups. No sockets here,
// so the reader can be fuzzed: it reads what a peer sends.
//
// A frame is a 9-byte header — type (1 byte), channel (4, big-endian, ≥ 1), length (4) — then,
// for DATA only, `length` bytes. END, RESET and CREDIT carry no payload: CREDIT's length field is
// the number of bytes the receiver may now be sent on the channel, END half-closes the sender's
// side, RESET aborts the channel both ways.

export const enum FrameType {
  Data = 0,
  End = 1,
  Reset = 2,
  Credit = 3,
}

export const FRAME_HEADER_BYTES = 9;
/** The most one DATA frame carries; bigger writes are split. */
export const MAX_FRAME_DATA = 64 * 1024;

/** A peer broke the protocol; the connection is closed. */
export class MuxProtocolError extends Error {
  readonly code = 'WEFT_E_PROXY_MUX_PROTOCOL';
  constructor(message: string) {
    super(`weft-mux: ${message}`);
    this.name = 'MuxProtocolError';
  }
}

/** A frame's header; `room` more bytes after it are left for the caller to fill with its data. */
export function frameHeader(type: FrameType, channel: number, length: number, room = 0): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES + room);
  h[0] = type;
  h.writeUInt32BE(channel, 1);
  h.writeUInt32BE(length, 5);
  return h;
}

export interface FrameSink {
  /** `data` is a view of the read it came in: keep it only as long as that read is kept. */
  onData(channel: number, data: Buffer): void;
  onEnd(channel: number): void;
  onReset(channel: number): void;
  onCredit(channel: number, bytes: number): void;
}

/** Splits a byte stream into frames; a frame cut across reads is completed by the next. */
export class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly sink: FrameSink) {}

  /** Throws MuxProtocolError on a frame no Weft sidecar sends. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const type = buf[off]!;
      const channel = buf.readUInt32BE(off + 1);
      const length = buf.readUInt32BE(off + 5);
      if (channel === 0) throw new MuxProtocolError('a frame on channel 0');
      if (type === FrameType.Data) {
        if (length === 0 || length > MAX_FRAME_DATA)
          throw new MuxProtocolError(`a DATA frame of ${length} bytes (1 to ${MAX_FRAME_DATA})`);
        if (buf.length - off - FRAME_HEADER_BYTES < length) break;
        const start = off + FRAME_HEADER_BYTES;
        off = start + length;
        this.sink.onData(channel, buf.subarray(start, off));
        continue;
      }
      off += FRAME_HEADER_BYTES;
      if (type === FrameType.End) {
        if (length !== 0) throw new MuxProtocolError('an END frame with a length');
        this.sink.onEnd(channel);
      } else if (type === FrameType.Reset) {
        if (length !== 0) throw new MuxProtocolError('a RESET frame with a length');
        this.sink.onReset(channel);
      } else if (type === FrameType.Credit) {
        if (length === 0) throw new MuxProtocolError('a CREDIT frame of 0 bytes');
        this.sink.onCredit(channel, length);
      } else throw new MuxProtocolError(`unknown frame type ${type}`);
    }
    if (off < buf.length) this.pending = buf.subarray(off);
  }
}
