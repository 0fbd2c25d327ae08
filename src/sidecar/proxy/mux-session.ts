// One `weft-mux/1` connection between two sidecars (frames in mux-frames.ts) and its channels.
// A channel is a virtual connection with the surface of a net.Socket that the HTTP/1.1 client
// pool (upstream-h1.ts) and server codec (downstream-h1.ts) use, so they carry requests over it
// unchanged. What a channel writes is queued on its session and written once per event-loop
// turn: with many requests in flight, one TLS record and one system call carry many of them.
// While the turns carry one frame each (low load), the first frame of a turn goes out at once
// instead, so that a lone request is not held back by the rest of the turn.
//
// Flow control is per channel and per direction: a side may send only as many bytes as the
// other has granted (WINDOW to start with); the receiver grants more as its reader takes them,
// so a paused reader (backpressure) stops only its own channel. The connection itself has a
// limit too: once SESSION_HIGH_WATER bytes wait to be written (the peer reads the connection
// slower than the channels fill it), channels send no more DATA until the socket drains, so what
// a session buffers stays near that limit however many channels it has.

import { EventEmitter } from 'node:events';
import type { OnReadOpts, Socket } from 'node:net';
import {
  FrameReader,
  FrameType,
  FRAME_HEADER_BYTES,
  frameHeader,
  MAX_FRAME_DATA,
  MuxProtocolError,
  type FrameSink,
} from './mux-frames.js';

export const MUX_ALPN = 'weft-mux/1';
/** Bytes each side may send on a channel before the other grants more. */
export const WINDOW = 64 * 1024;
/** Credit goes back in pieces of at least this much, not per frame. */
const GRANT_AT = WINDOW / 4;
/** Channels one connection may have open; a peer opening more gets RESETs. */
export const MAX_CHANNELS = 1024;
/** Data up to this size is copied behind its frame header: one buffer, one piece to write. */
const COPY_UP_TO = 16 * 1024;
/** Bytes of frames a session holds for its socket before channels must wait for it to drain. */
export const SESSION_HIGH_WATER = 1024 * 1024;

type WriteCb = (err?: Error | null) => void;

export class MuxSession implements FrameSink {
  readonly channels = new Map<number, MuxChannel>();
  /** False while the client's TLS handshake is under way. */
  connected: boolean;
  closed = false;
  private nextId = 1;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private written: WriteCb[] = [];
  private failure: Error | undefined;
  private readonly reader = new FrameReader(this);
  /** The socket holds more than SESSION_HIGH_WATER bytes: no DATA until it drains. */
  private congested = false;
  /** Channels with DATA to send that were told to wait (see mayPump). */
  private readonly waiting = new Set<MuxChannel>();

  constructor(
    readonly socket: Socket,
    /** Called with each channel the peer opens (server side); undefined on the client side. */
    private readonly onChannel?: (channel: MuxChannel) => void,
    connected = true,
  ) {
    this.connected = connected;
    socket.on('data', (d: Buffer) => {
      try {
        this.reader.push(d);
      } catch (err) {
        this.destroy(err as Error);
      }
    });
    socket.on('error', (err) => {
      this.failure ??= err;
    });
    socket.on('end', () => this.destroy(new Error('the peer closed the mux connection')));
    socket.on('close', () => this.destroy(this.failure ?? new Error('mux connection closed')));
  }

  /**
   * The peer answered without weft-mux/1 (an older sidecar, another proxy): each channel opened
   * on this connection becomes a plain HTTP/1.1 connection instead, the first on this very
   * socket, the others on sockets `dial` opens; nothing was sent yet, so no request is lost.
   */
  fallBack(dial: () => Socket): void {
    if (this.closed) return;
    this.closed = true;
    const channels = [...this.channels.values()];
    this.channels.clear();
    this.out = [];
    this.outBytes = 0;
    this.written = [];
    this.waiting.clear();
    this.socket.removeAllListeners('data');
    if (channels.length === 0) {
      this.socket.end();
      return;
    }
    channels.forEach((c, i) => c.useSocket(i === 0 ? this.socket : dial(), i === 0));
  }

  /** The handshake is done: channels opened meanwhile are connected. */
  markConnected(): void {
    if (this.connected || this.closed) return;
    this.connected = true;
    for (const c of this.channels.values()) c.connectedNow();
    if (this.out.length > 0) this.queueFlush();
  }

  /** A new channel to the peer (client side). */
  open(onread?: OnReadOpts): MuxChannel {
    const id = this.nextId;
    this.nextId += 1;
    const ch = new MuxChannel(this, id, false, onread);
    this.channels.set(id, ch);
    if (this.closed) process.nextTick(() => ch.gone(this.failure ?? new Error('mux connection closed')));
    else if (this.connected) process.nextTick(() => ch.connectedNow());
    return ch;
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.failure ??= err;
    const reason = this.failure ?? new Error('mux connection closed');
    for (const c of [...this.channels.values()]) c.gone(reason);
    this.channels.clear();
    this.waiting.clear();
    this.socket.destroy();
    this.callEarly(); // written before the failure: they succeeded, and come first
    const cbs = this.written;
    this.written = [];
    for (const cb of cbs) cb(reason);
  }

  // ---- frames out

  /** Queues a frame; what is queued goes out together, once per event-loop turn. */
  send(type: FrameType, channel: number, length: number, data?: Buffer, cb?: WriteCb): void {
    if (data === undefined) this.sendFrame(frameHeader(type, channel, length), cb);
    else if (data.length > COPY_UP_TO) {
      // A large piece (a streamed body) is not copied: header and data go out side by side.
      this.sendFrame(frameHeader(type, channel, length), undefined, true);
      this.sendFrame(data, cb);
    } else {
      const frame = frameHeader(type, channel, length, data.length);
      data.copy(frame, FRAME_HEADER_BYTES);
      this.sendFrame(frame, cb);
    }
  }

  /** A whole frame, header included (`held`: the rest of it follows at once). */
  sendFrame(frame: Buffer, cb?: WriteCb, held = false): void {
    if (this.closed) {
      if (cb) process.nextTick(cb, this.failure ?? new Error('mux connection closed'));
      return;
    }
    this.out.push(frame);
    this.outBytes += frame.length;
    if (cb) this.written.push(cb);
    if (held) return; // the rest of this frame follows at once: the two count as one
    this.framesThisTurn += 1;
    if (!this.connected) return;
    if (this.flushQueued || this.congested || this.batching) {
      this.queueFlush();
      return;
    }
    // Quiet: the first frame since the last flush goes out at once, so that what its sender
    // still does in this turn (timers, bookkeeping, the rest of the read) is not between it and
    // the peer; frames queued after it in this turn go out together, once.
    this.queueFlush();
    this.writeOut(true);
  }

  /** Callbacks of frames written early (inside a write): called a tick later, or before any later ones. */
  private earlyDone: WriteCb[] = [];
  private readonly callEarly = (): void => {
    if (this.earlyDone.length === 0) return;
    const cbs = this.earlyDone;
    this.earlyDone = [];
    for (const cb of cbs) cb();
  };

  /** Frames sent since the last flush: more than one, and the next turn batches from its first. */
  private framesThisTurn = 0;
  /** Requests meet in a turn (high load): every frame waits for the turn's one write. */
  private batching = false;

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(this.flush);
  }

  private readonly grants = new Set<MuxChannel>();

  /**
   * A channel's reader has taken GRANT_AT bytes or more: the credit goes with the next flush,
   * whatever else it carries, or forces one (`urgent`) when the peer is down to half its window.
   */
  grantLater(ch: MuxChannel, urgent: boolean): void {
    this.grants.add(ch);
    if (urgent && this.connected) this.queueFlush();
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    this.batching = this.framesThisTurn > 1;
    this.framesThisTurn = 0;
    this.writeOut(false);
  };

  /**
   * Writes what is queued, credit included, in one piece. `early`: called from inside a write
   * (see sendFrame), so the write callbacks wait for the next tick, as a socket's do.
   */
  private writeOut(early: boolean): void {
    if (this.closed) return;
    for (const ch of this.grants) {
      const n = ch.takeGrant();
      if (n > 0) {
        const h = frameHeader(FrameType.Credit, ch.id, n);
        this.out.push(h);
        this.outBytes += h.length;
      }
    }
    this.grants.clear();
    if (this.out.length === 0) return;
    const out = this.out;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    const cbs = this.written;
    this.written = [];
    const s = this.socket;
    if (bytes <= 64 * 1024) s.write(out.length === 1 ? out[0]! : Buffer.concat(out, bytes));
    else {
      s.cork();
      for (const b of out) s.write(b);
      s.uncork();
    }
    if (early) {
      if (cbs.length > 0) {
        if (this.earlyDone.length === 0) process.nextTick(this.callEarly);
        this.earlyDone.push(...cbs);
      }
    } else {
      this.callEarly(); // an early write's callbacks before those of frames written after it
      for (const cb of cbs) cb();
    }
    if (s.writableLength > SESSION_HIGH_WATER) {
      // More than the socket's own high-water mark is buffered, so 'drain' will come.
      if (!this.congested) s.once('drain', this.drained);
      this.congested = true;
    } else if (!this.congested && !early) this.resumeWaiting();
    // (Early, inside a channel's write, no other channel is pumped: none waits for room that a
    // quiet turn's one frame could have taken, and a pump inside a pump is best avoided.)
  }

  private readonly drained = (): void => {
    this.congested = false;
    if (!this.closed) this.resumeWaiting();
  };

  /** DATA may be queued: the socket is not congested and this turn's frames are under the limit. */
  get hasRoom(): boolean {
    return !this.congested && this.outBytes < SESSION_HIGH_WATER;
  }

  /** Whether a channel may queue DATA now; a channel told no is pumped again when there is room. */
  mayPump(ch: MuxChannel): boolean {
    if (this.hasRoom) return true;
    this.waiting.add(ch);
    return false;
  }

  /** Pumps the waiting channels, oldest first; each waits again if room runs out. */
  private resumeWaiting(): void {
    if (this.waiting.size === 0) return;
    const chs = [...this.waiting];
    this.waiting.clear();
    for (const ch of chs) ch.pump();
  }

  // ---- frames in (FrameSink)

  onData(channel: number, data: Buffer): void {
    let ch = this.channels.get(channel);
    if (ch === undefined) {
      // A client ignores frames of a channel it has closed (they were on their way); a server
      // takes the first DATA of an unknown channel as its opening, unless it is draining or
      // full: then the channel is reset before a byte of it is read.
      if (this.onChannel === undefined) return;
      if (this.draining || this.channels.size >= MAX_CHANNELS) {
        this.send(FrameType.Reset, channel, 0);
        return;
      }
      ch = new MuxChannel(this, channel, true, undefined);
      this.channels.set(channel, ch);
      this.onChannel(ch);
    }
    ch.receive(data);
  }

  onEnd(channel: number): void {
    this.channels.get(channel)?.receiveEnd();
  }

  onReset(channel: number): void {
    const ch = this.channels.get(channel);
    if (ch === undefined) return;
    // A channel refused before any answer: the peer is draining or full, so new channels go to
    // a new connection (which a draining peer refuses, as it would without weft-mux/1).
    if (!ch.answered) this.goingAway = true;
    ch.gone(new Error('the peer reset the channel'));
  }

  /** Client side: open no more channels here; the pool opens a new connection instead. */
  goingAway = false;

  onCredit(channel: number, bytes: number): void {
    this.channels.get(channel)?.grant(bytes);
  }

  removed(ch: MuxChannel): void {
    this.channels.delete(ch.id);
    // A client's connection lives as long as the pool keeps channels on it; a draining server's
    // until its last channel is done.
    if (this.channels.size === 0 && (this.onChannel === undefined || this.draining)) this.end();
  }

  private draining = false;

  /** Server side: once the open channels are done, the connection ends. */
  drain(): void {
    this.draining = true;
    if (this.channels.size === 0) this.end();
  }

  private end(): void {
    if (this.closed) return;
    this.flush(); // what is queued, and its write callbacks, go before the end
    this.closed = true;
    this.socket.end();
  }
}

/** One virtual connection: what net.Socket offers that the HTTP/1.1 codecs use. */
export class MuxChannel extends EventEmitter {
  destroyed = false;
  connecting: boolean;
  /** As for accepted sockets, the server codec decides what the peer's END means. */
  allowHalfOpen: boolean;
  private sendCredit = WINDOW;
  private recvAllowed = WINDOW;
  private toGrant = 0;
  private queue: Array<{ buf: Buffer; cb: WriteCb | undefined }> = [];
  private needDrain = false;
  private endQueued = false;
  private localEnded = false;
  private remoteEnded = false;
  private paused = false;
  private held: Buffer[] = [];
  private heldEnd = false;

  constructor(
    readonly session: MuxSession,
    readonly id: number,
    accepted: boolean,
    private readonly onread: OnReadOpts | undefined,
  ) {
    super();
    this.connecting = !accepted;
    this.allowHalfOpen = accepted;
  }

  get remoteAddress(): string | undefined {
    return (this.direct ?? this.session.socket).remoteAddress;
  }

  get writable(): boolean {
    if (this.direct !== undefined) return this.direct.writable;
    return !this.destroyed && !this.endQueued;
  }

  /** A socket of its own instead of the mux connection (see MuxSession.fallBack). */
  private direct: Socket | undefined;

  useSocket(socket: Socket, connected: boolean): void {
    if (this.destroyed) {
      socket.destroy();
      return;
    }
    this.direct = socket;
    socket.on('data', (d: Buffer) => this.hand(d));
    socket.on('end', () => this.emit('end'));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    socket.on('close', (hadError: boolean) => {
      this.destroyed = true;
      this.emit('close', hadError);
    });
    if (this.paused) socket.pause();
    const q = this.queue;
    this.queue = [];
    for (const item of q) socket.write(item.buf, item.cb);
    if (this.endQueued) socket.end();
    if (connected) this.connectedNow();
    else socket.once('secureConnect', () => this.connectedNow());
  }

  connectedNow(): void {
    if (!this.connecting || this.destroyed) return;
    this.connecting = false;
    this.emit('connect');
    this.pump();
  }

  // ---- writing

  write(data: string | Uint8Array, enc?: BufferEncoding | WriteCb, cb?: WriteCb): boolean {
    if (this.direct !== undefined) return this.direct.write(data, enc as BufferEncoding, cb);
    const callback = typeof enc === 'function' ? enc : cb;
    if (this.destroyed || this.endQueued) {
      if (callback) process.nextTick(callback, new Error('write after end'));
      return false;
    }
    // The common case, a head written as a latin1 string within credit: straight into a frame.
    if (
      typeof data === 'string' &&
      enc === 'latin1' &&
      !this.connecting &&
      this.queue.length === 0 &&
      this.session.hasRoom &&
      data.length > 0 &&
      data.length <= this.sendCredit &&
      data.length <= MAX_FRAME_DATA
    ) {
      const frame = frameHeader(FrameType.Data, this.id, data.length, data.length);
      frame.write(data, FRAME_HEADER_BYTES, 'latin1');
      this.sendCredit -= data.length;
      this.session.sendFrame(frame, callback);
      return true;
    }
    const buf =
      typeof data === 'string'
        ? Buffer.from(data, typeof enc === 'string' ? enc : 'utf8')
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data.buffer, data.byteOffset, data.length);
    if (buf.length === 0) {
      if (callback) process.nextTick(callback);
      return true;
    }
    this.queue.push({ buf, cb: callback });
    this.pump();
    if (this.queue.length === 0) return true;
    // While the connection is being made, as a socket does: buffered, and `false` only past a
    // window's worth.
    if (this.connecting && this.queue.reduce((n, q) => n + q.buf.length, 0) < WINDOW) return true;
    this.needDrain = true;
    return false;
  }

  end(data?: string | Uint8Array | WriteCb, enc?: BufferEncoding | WriteCb): this {
    if (typeof data === 'function') data = undefined;
    if (this.direct !== undefined) {
      if (data === undefined) this.direct.end();
      else this.direct.end(data, enc as BufferEncoding);
      return this;
    }
    if (data !== undefined) this.write(data, enc as BufferEncoding);
    if (this.endQueued || this.destroyed) return this;
    this.endQueued = true;
    this.pump();
    return this;
  }

  cork(): void {}
  uncork(): void {}
  setNoDelay(): this {
    return this;
  }

  /**
   * Sends what credit and the session's room allow, in frames of at most MAX_FRAME_DATA (the
   * session calls it again when it has room).
   */
  pump(): void {
    if (this.connecting || this.destroyed) return;
    const q = this.queue;
    while (q.length > 0 && this.sendCredit > 0 && this.session.mayPump(this)) {
      const item = q[0]!;
      const n = Math.min(item.buf.length, this.sendCredit, MAX_FRAME_DATA);
      const piece = n === item.buf.length ? item.buf : item.buf.subarray(0, n);
      this.sendCredit -= n;
      if (n === item.buf.length) {
        q.shift();
        this.session.send(FrameType.Data, this.id, n, piece, item.cb);
      } else {
        item.buf = item.buf.subarray(n);
        this.session.send(FrameType.Data, this.id, n, piece);
      }
    }
    if (q.length > 0) return;
    if (this.needDrain) {
      this.needDrain = false;
      process.nextTick(() => this.emit('drain'));
    }
    if (this.endQueued && !this.localEnded) {
      this.localEnded = true;
      this.session.send(FrameType.End, this.id, 0);
      this.finishIfDone();
    }
  }

  grant(bytes: number): void {
    if (this.sendCredit + bytes > 2 ** 31) {
      this.session.destroy(new MuxProtocolError('credit beyond 2^31 bytes on a channel'));
      return;
    }
    this.sendCredit += bytes;
    this.pump();
  }

  // ---- reading

  /** Something came back on this channel. */
  answered = false;

  receive(data: Buffer): void {
    if (this.destroyed || this.remoteEnded) return;
    this.answered = true;
    if (data.length > this.recvAllowed) {
      this.session.destroy(new MuxProtocolError('DATA beyond the credit granted'));
      return;
    }
    this.recvAllowed -= data.length;
    if (this.paused || this.held.length > 0) this.held.push(data);
    else this.deliver(data);
  }

  /** To the reader: the pool's onread callback (it copies out what it is given), else 'data'. */
  private hand(data: Buffer): void {
    if (this.onread !== undefined) this.onread.callback(data.length, data);
    else this.emit('data', data);
  }

  private deliver(data: Buffer): void {
    this.hand(data);
    this.toGrant += data.length;
    if (this.toGrant >= GRANT_AT && !this.destroyed && !this.remoteEnded)
      this.session.grantLater(this, this.recvAllowed <= WINDOW / 2);
  }

  /** The credit to send now (the session's flush calls this), counted as sent. */
  takeGrant(): number {
    if (this.destroyed || this.remoteEnded) return 0;
    const n = this.toGrant;
    this.toGrant = 0;
    this.recvAllowed += n;
    return n;
  }

  receiveEnd(): void {
    if (this.destroyed || this.remoteEnded) return;
    this.remoteEnded = true;
    if (this.paused || this.held.length > 0) this.heldEnd = true;
    else this.ended();
  }

  private ended(): void {
    this.emit('end');
    if (!this.allowHalfOpen) this.end();
    this.finishIfDone();
  }

  pause(): this {
    this.paused = true;
    this.direct?.pause();
    return this;
  }

  resume(): this {
    if (this.direct !== undefined) {
      this.paused = false;
      this.direct.resume();
      return this;
    }
    if (!this.paused && this.held.length === 0) return this;
    this.paused = false;
    while (this.held.length > 0 && !this.paused && !this.destroyed) this.deliver(this.held.shift()!);
    if (this.held.length === 0 && this.heldEnd && !this.paused && !this.destroyed) {
      this.heldEnd = false;
      this.ended();
    }
    return this;
  }

  // ---- the end

  private finishIfDone(): void {
    if (this.localEnded && this.remoteEnded && !this.destroyed) this.close(undefined, false);
  }

  destroy(err?: Error): this {
    if (this.direct !== undefined) {
      this.destroyed = true;
      this.direct.destroy(err);
      return this;
    }
    if (this.destroyed) return this;
    this.close(err, true);
    return this;
  }

  /** The session went away, or the peer reset the channel: nothing to tell the peer. */
  gone(err: Error): void {
    if (this.destroyed) return;
    this.close(this.connecting || !this.localEnded || !this.remoteEnded ? err : undefined, false);
  }

  private close(err: Error | undefined, sendReset: boolean): void {
    this.destroyed = true;
    this.connecting = false;
    if (sendReset && !this.session.closed && !(this.localEnded && this.remoteEnded))
      this.session.send(FrameType.Reset, this.id, 0);
    this.session.removed(this);
    const q = this.queue;
    this.queue = [];
    this.held = [];
    process.nextTick(() => {
      for (const item of q) item.cb?.(err ?? new Error('channel closed'));
      if (err && this.listenerCount('error') > 0) this.emit('error', err);
      this.emit('close', err !== undefined);
    });
  }
}
