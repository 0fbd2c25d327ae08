// A state-of-the-world ADS client: what Weft's sidecar uses to receive its configuration, and
// what benchmarks use to stand in for thousands of proxies. It validates each response as a
// whole through the `apply` callback and ACKs or NACKs it; after a NACK the last good set
// stays in force, so a consumer never sees a half-applied update. It reconnects with
// exponential backoff and jitter and resumes with the versions it last accepted.
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { WEFT_VERSION } from '../version.js';
import {
  decodeDiscoveryResponse,
  decodeResource,
  discoveryRequestBytes,
  encodeDiscoveryRequest,
  readDiscoveryResponseHeader,
  resourceName,
  structFromJson,
  type DiscoveryResponseMessage,
} from './client-codec.js';
import { GrpcChannel, GrpcStatus, type ChannelTls, type GrpcCall } from './grpc-channel.js';
import { PUSH_ORDER, TypeUrl } from './types.js';

/** Names to subscribe to, or '*' for every resource of the type (wildcard). */
export type Subscription = readonly string[] | '*';

export interface AdsClientNode {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
}

/** One response, offered whole: `resources` is the complete set the client would hold. */
export interface AdsUpdate {
  typeUrl: TypeUrl;
  version: string;
  resources: ReadonlyMap<string, Record<string, unknown>>;
}

export interface AdsClientOptions {
  /** `host:port` of the xDS server. */
  address: string;
  node: AdsClientNode;
  subscriptions?: Partial<Record<TypeUrl, Subscription>>;
  /** Validates and applies an update; returns an error message to NACK it, else undefined. */
  apply?: (update: AdsUpdate) => string | undefined;
  /** false: ACK every response without decoding its resources (benchmarks). Default true. */
  decode?: boolean;
  backoff?: { baseMs?: number; maxMs?: number };
  /**
   * TLS to the server, or a function asked at every new connection, so that a renewed client
   * certificate is the one presented next time. None: plaintext (h2c).
   */
  tls?: ChannelTls | (() => ChannelTls);
  /** Extra request headers (gRPC metadata), e.g. `authorization`. */
  metadata?: Record<string, string>;
  /**
   * A channel to share with other clients (one connection carrying several streams, as
   * benchmarks want); `address` and `tls` are then the channel's. Not closed by close().
   */
  channel?: GrpcChannel;
  logger?: Logger;
}

export interface ResponseEvent {
  typeUrl: TypeUrl;
  version: string;
  nonce: string;
  /** Names in the response (empty when decoding is off). */
  names: string[];
  count: number;
  /** Size of the DiscoveryResponse message as received (protobuf bytes, before gRPC framing). */
  bytes: number;
}
export interface AckNackEvent {
  typeUrl: TypeUrl;
  version: string;
  nonce: string;
  /** Set on NACK: why the update was rejected. */
  message?: string;
}

interface AdsClientEvents {
  connected: [];
  disconnected: [{ code: number; details: string }];
  response: [ResponseEvent];
  ack: [AckNackEvent];
  nack: [AckNackEvent];
}

/** Types whose responses carry the whole set: what a response omits is deleted. */
const FULL_STATE = new Set<string>([TypeUrl.Listener, TypeUrl.Cluster]);
const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const INVALID_ARGUMENT = GrpcStatus.INVALID_ARGUMENT;

/**
 * A response as the stream delivers it: resources decoded to raw Any, or (decode: false) only
 * counted; and the size it had on the wire, which benchmarks report.
 */
interface ReceivedResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: DiscoveryResponseMessage['resources'];
  count: number;
  bytes: number;
}

interface ClientTypeState {
  subscription: Subscription;
  resources: Map<string, Record<string, unknown>>;
  ackedVersion: string;
  lastNonce: string;
  /** type_url and resource_names encoded, for ACKs; reset when the subscription changes. */
  fixedBytes: Uint8Array | undefined;
}

export class AdsClient extends EventEmitter<AdsClientEvents> {
  private readonly opts: AdsClientOptions;
  private readonly log: Logger;
  private readonly channel: GrpcChannel;
  private readonly types = new Map<TypeUrl, ClientTypeState>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private call: GrpcCall | undefined;
  private sentNode = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private connectedNow = false;

  constructor(opts: AdsClientOptions) {
    super();
    this.opts = opts;
    this.log = opts.logger ?? silentLogger();
    this.baseMs = opts.backoff?.baseMs ?? 500;
    this.maxMs = opts.backoff?.maxMs ?? 30_000;
    this.channel =
      opts.channel ?? new GrpcChannel({ address: opts.address, ...(opts.tls ? { tls: opts.tls } : {}) });
    for (const [typeUrl, sub] of Object.entries(opts.subscriptions ?? {})) {
      this.types.set(typeUrl as TypeUrl, {
        subscription: sub,
        resources: new Map(),
        ackedVersion: '',
        lastNonce: '',
        fixedBytes: undefined,
      });
    }
  }

  /** Opens the stream and subscribes; reconnects on its own until close(). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.connect();
  }

  /** Sets (replaces) the subscription for a type; sent at once when connected. */
  subscribe(typeUrl: TypeUrl, subscription: Subscription): void {
    let st = this.types.get(typeUrl);
    if (st === undefined) {
      st = { subscription, resources: new Map(), ackedVersion: '', lastNonce: '', fixedBytes: undefined };
      this.types.set(typeUrl, st);
    } else {
      st.subscription = subscription;
      st.fixedBytes = undefined;
    }
    if (this.call !== undefined) this.sendRequest(typeUrl, st, st.ackedVersion);
  }

  /** The last accepted resources of a type (empty before the first ACK). */
  resources(typeUrl: TypeUrl): ReadonlyMap<string, Record<string, unknown>> {
    return this.types.get(typeUrl)?.resources ?? new Map();
  }

  /** The last accepted version of a type ('' before the first ACK). */
  version(typeUrl: TypeUrl): string {
    return this.types.get(typeUrl)?.ackedVersion ?? '';
  }

  get connected(): boolean {
    return this.connectedNow;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    if (this.opts.channel === undefined) this.channel.close();
  }

  // -------------------------------------------------------------------------------------------

  private connect(): void {
    const call = this.channel.bidi(METHOD, this.opts.metadata);
    this.call = call;
    this.sentNode = false;
    call.on('message', (bytes: Buffer) => {
      if (this.call !== call) return;
      let res: ReceivedResponse;
      try {
        res = this.readResponse(bytes);
      } catch (e) {
        // Ends the stream (status CANCELLED, with this reason); the client reconnects.
        call.cancel(`the DiscoveryResponse does not decode: ${(e as Error).message}`);
        return;
      }
      if (!this.connectedNow) {
        this.connectedNow = true;
        this.emit('connected');
      }
      this.attempt = 0; // the server answers: the next outage starts from the base delay
      this.handleResponse(res);
    });
    call.on('status', (status) => this.onStreamEnd(call, status.code, status.details));
    // Resync: every type resumes with the version it last accepted, so a server that still
    // has that version could stay quiet, and one that has moved on sends the difference.
    for (const typeUrl of this.orderedTypes()) {
      const st = this.types.get(typeUrl);
      if (st !== undefined) {
        st.lastNonce = '';
        this.sendRequest(typeUrl, st, st.ackedVersion);
      }
    }
  }

  private orderedTypes(): TypeUrl[] {
    const known = PUSH_ORDER.filter((t) => this.types.has(t));
    return [...known, ...[...this.types.keys()].filter((t) => !PUSH_ORDER.includes(t))];
  }

  private onStreamEnd(call: GrpcCall, code: number, details: string): void {
    if (this.call !== call) return; // already handled
    this.call = undefined;
    const wasConnected = this.connectedNow;
    this.connectedNow = false;
    if (wasConnected) this.emit('disconnected', { code, details });
    if (this.closed) return;
    const delay = this.backoffDelay();
    this.log.info({ code, details, retryInMs: delay }, 'ADS stream ended; reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) this.connect();
    }, delay);
  }

  /** Exponential backoff with equal jitter: half fixed, half random, so clients spread out. */
  private backoffDelay(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private readResponse(bytes: Buffer): ReceivedResponse {
    if (this.opts.decode === false) {
      const h = readDiscoveryResponseHeader(bytes);
      return { ...h, resources: [], count: h.resourceCount, bytes: bytes.length };
    }
    const m = decodeDiscoveryResponse(bytes);
    return { ...m, count: m.resources.length, bytes: bytes.length };
  }

  private sendRequest(typeUrl: TypeUrl, st: ClientTypeState, version: string, errorMessage?: string): void {
    const call = this.call;
    if (call === undefined) return;
    // An explicit '*' keeps the wildcard meaning even for types without the legacy rule.
    const names = st.subscription === '*' ? (FULL_STATE.has(typeUrl) ? [] : ['*']) : [...st.subscription];
    if (this.sentNode && errorMessage === undefined) {
      st.fixedBytes ??= encodeDiscoveryRequest({ type_url: typeUrl, resource_names: names });
      call.write(discoveryRequestBytes(st.fixedBytes, version, st.lastNonce));
      return;
    }
    const req: Record<string, unknown> = {
      type_url: typeUrl,
      version_info: version,
      response_nonce: st.lastNonce,
      resource_names: names,
    };
    if (!this.sentNode) {
      const n = this.opts.node;
      req.node = {
        id: n.id,
        cluster: n.cluster ?? '',
        metadata: structFromJson(n.metadata ?? {}),
        user_agent_name: 'weft',
        user_agent_version: WEFT_VERSION,
        ...(n.locality ? { locality: n.locality } : {}),
      };
      this.sentNode = true;
    }
    if (errorMessage !== undefined) req.error_detail = { code: INVALID_ARGUMENT, message: errorMessage };
    call.write(encodeDiscoveryRequest(req));
  }

  private handleResponse(res: ReceivedResponse): void {
    const typeUrl = res.type_url as TypeUrl;
    const st = this.types.get(typeUrl);
    if (st === undefined) {
      this.log.warn({ typeUrl }, 'ADS response for a type not subscribed; ignored');
      return;
    }
    st.lastNonce = res.nonce;
    if (this.opts.decode === false) {
      this.emit('response', {
        typeUrl,
        version: res.version_info,
        nonce: res.nonce,
        names: [],
        count: res.count,
        bytes: res.bytes,
      });
      st.ackedVersion = res.version_info;
      this.sendRequest(typeUrl, st, res.version_info);
      this.emit('ack', { typeUrl, version: res.version_info, nonce: res.nonce });
      return;
    }
    const received = new Map<string, Record<string, unknown>>();
    let problem: string | undefined;
    for (const [i, any] of res.resources.entries()) {
      if (any.type_url !== typeUrl) {
        problem = `resources[${i}]: type ${any.type_url} in a response for ${typeUrl}`;
        break;
      }
      try {
        const obj = decodeResource(typeUrl, any.value);
        const name = resourceName(obj);
        if (name === '') {
          problem = `resources[${i}]: resource has no name`;
          break;
        }
        received.set(name, obj);
      } catch (err) {
        problem = `resources[${i}]: cannot decode: ${(err as Error).message}`;
        break;
      }
    }
    this.emit('response', {
      typeUrl,
      version: res.version_info,
      nonce: res.nonce,
      names: [...received.keys()],
      count: res.count,
      bytes: res.bytes,
    });
    let candidate: Map<string, Record<string, unknown>> | undefined;
    if (problem === undefined) {
      candidate = FULL_STATE.has(typeUrl) ? received : new Map([...st.resources, ...received]);
      try {
        problem = this.opts.apply?.({ typeUrl, version: res.version_info, resources: candidate });
      } catch (err) {
        problem = `apply failed: ${(err as Error).message}`;
      }
    }
    if (problem !== undefined || candidate === undefined) {
      const message = problem ?? 'rejected';
      this.log.warn({ typeUrl, version: res.version_info, message }, 'rejecting xDS update (NACK)');
      this.sendRequest(typeUrl, st, st.ackedVersion, message);
      this.emit('nack', { typeUrl, version: res.version_info, nonce: res.nonce, message });
      return;
    }
    st.resources = candidate;
    st.ackedVersion = res.version_info;
    this.sendRequest(typeUrl, st, res.version_info);
    this.emit('ack', { typeUrl, version: res.version_info, nonce: res.nonce });
  }
}
