// The ADS server: Envoy's Aggregated Discovery Service, state-of-the-world variant, over gRPC.
// It only diffs and ships: an XdsConfigSource decides what each proxy should have; this
// module tracks, per stream and per type, what was sent and what the proxy ACKed or NACKed,
// and pushes only what changed. Protocol reference: "xDS REST and gRPC protocol" (Envoy docs).
//
// Scale: one pass per change visits every stream, but a stream is only compared in detail for
// the types and names that differ between the resource set it was last reconciled against and
// the current one (found by object identity, which the source preserves for unchanged
// resources). The pass yields to the event loop every few hundred sends, so the first proxies
// receive (and ACK) a change while later ones are still being written. Bytes are built by
// splicing pre-encoded Any fields (codec.ts).
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { systemClock } from '../store/clock.js';
import {
  buildDiscoveryResponse,
  controlPlaneField,
  decodeDiscoveryRequest,
  encodeForResponse,
  structToJson,
  type DiscoveryRequestMessage,
  type EncodedResource,
} from './codec.js';
import { PUSH_ORDER, TypeUrl, type NodeInfo, type ResourceSet } from './types.js';

/** What the ADS server asks of the rest of the control plane. */
export interface XdsConfigSource {
  /**
   * Desired resources for this proxy now. Called on every change for every stream, so the
   * source should cache per node class. Resource objects are treated as immutable: the server
   * caches their encoding by identity, so a changed resource must be a new object.
   */
  resourcesFor(node: NodeInfo): { version: string; resources: ResourceSet };
  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** The gRPC call of one ADS stream, as the server sees it. */
export type AdsCall = grpc.ServerDuplexStream<DiscoveryRequestMessage, Buffer>;

/** What a listener decided about a stream: who is on it, or why it may not go on. */
export type StreamGrant =
  | {
      ok: true;
      identity: string;
      /** When the credential the stream was opened with expires (ms): the stream ends then. */
      expiresAt?: number;
      /**
       * For a credential that can be revoked (a join token): subscribes to its revocation, which
       * ends the stream; returns the unsubscribe function, called when the stream closes.
       */
      onRevoked?: (cb: () => void) => () => void;
    }
  | { ok: false; code: grpc.status; details: string };

/**
 * Decides whether a stream may receive the configuration of the node its first request names,
 * from what the call carries (its TLS peer certificate, its metadata). Requests that arrive
 * meanwhile wait; a refusal ends the stream with the given status before anything is sent.
 */
export type StreamAuthorizer = (call: AdsCall, node: NodeInfo) => Promise<StreamGrant>;

/** How one listening port of the ADS server takes its streams. */
export interface BindOptions {
  /** Default: plaintext. */
  credentials?: grpc.ServerCredentials;
  /** Default: every stream is served (its identity shows as `unauthenticated`). */
  authorize?: StreamAuthorizer;
}

/** Requests one stream may queue while it is being authorized; a proxy sends a handful. */
const MAX_QUEUED_WHILE_AUTHORIZING = 64;

export interface AdsServerOptions {
  logger: Logger;
  /** Sent as DiscoveryResponse.control_plane.identifier; lets a proxy say who configured it. */
  controlPlaneId?: string;
  /** How long close() waits for streams to finish before forcing them. Default 2000 ms. */
  closeGraceMs?: number;
}

export interface NackInfo {
  version: string;
  nonce: string;
  message: string;
  /** ISO 8601 time the NACK arrived. */
  at: string;
}

export interface TypeStatus {
  wildcard: boolean;
  /** Explicitly subscribed names (besides the wildcard, if any), sorted. */
  names: string[];
  lastSent?: { version: string; nonce: string; at: string };
  /** Version the proxy last ACKed ('' until the first ACK). */
  ackedVersion: string;
  /** A response was sent and neither ACKed nor NACKed yet. */
  pending: boolean;
  lastNack?: NackInfo;
}

export interface ProxyStatus {
  streamId: number;
  node: NodeInfo;
  peer: string;
  /** Who the stream proved to be (a SPIFFE ID), or `unauthenticated` on a plaintext port. */
  identity: string;
  /** ISO 8601 time the stream opened. */
  connectedSince: string;
  types: Partial<Record<TypeUrl, TypeStatus>>;
}

export interface StreamEvent {
  streamId: number;
  nodeId: string;
  peer: string;
}
export interface AckEvent extends StreamEvent {
  typeUrl: TypeUrl;
  version: string;
  nonce: string;
}
export interface NackEvent extends AckEvent {
  message: string;
}
export interface SendEvent extends AckEvent {
  names: string[];
}

interface AdsServerEvents {
  connect: [StreamEvent];
  disconnect: [StreamEvent];
  ack: [AckEvent];
  nack: [NackEvent];
  send: [SendEvent];
}

const ADS_SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService/';

/** Types whose SotW responses must list every subscribed resource: omission means deletion. */
const FULL_STATE = new Set<string>([TypeUrl.Listener, TypeUrl.Cluster]);
const KNOWN_TYPES = new Set<string>(PUSH_ORDER);

interface TypeState {
  readonly typeUrl: TypeUrl;
  wildcard: boolean;
  /** Wildcard by the legacy rule (first request with no names): later empty lists keep it. */
  legacyWildcard: boolean;
  names: Set<string>;
  /** name → hash of the content the proxy was last sent. */
  sent: Map<string, string>;
  lastSentVersion: string;
  lastSentNonce: string;
  lastSentAt: number;
  ackedVersion: string;
  pending: boolean;
  lastNack: NackInfo | undefined;
  /** The resource_names of the last request applied; an identical list changes nothing. */
  lastRequested: string[] | undefined;
}

interface AdsStream {
  readonly id: number;
  readonly call: AdsCall;
  readonly peer: string;
  identity: string;
  readonly since: number;
  node: NodeInfo | undefined;
  readonly types: Map<TypeUrl, TypeState>;
  closed: boolean;
  /**
   * The resource set every type of this stream is known to be reconciled against (what was
   * sent equals what that set holds for the subscribed names), so the next pass need only look
   * at what changed since. Undefined when unknown: the next pass then checks everything.
   */
  base: ResourceSet | undefined;
  /** No type has been answered yet, so any set is a consistent base. */
  fresh: boolean;
  /**
   * The proxy is not reading (its gRPC write buffer is full). Passes skip it instead of queueing
   * every change in memory; when it drains it is brought up to date once, with the latest state:
   * SotW lets intermediate versions be skipped.
   */
  blocked: boolean;
}

/** Per type, the names whose object differs between two resource sets (added, changed, gone). */
type SetDiff = Map<TypeUrl, Set<string>>;

/** A push pass in progress, resumable across event-loop turns. */
interface PushPass {
  readonly streams: Iterator<AdsStream>;
  /** prev set → next set → diff; usually one entry, as most nodes share one compiled set. */
  readonly diffs: Map<ResourceSet, Map<ResourceSet, SetDiff>>;
}

// Yield to the event loop after this many responses (or visited streams) so that writes are
// flushed and ACKs read while the rest of the pass runs. Small enough to keep each turn a
// millisecond or two; large enough that the per-turn overhead does not matter.
const SENDS_PER_TURN = 256;
const VISITS_PER_TURN = 4096;

// Reused across the hot loop so an unchanged stream allocates nothing.
const NO_RESOURCES: ReadonlyMap<string, object> = new Map();

export class AdsServer extends EventEmitter<AdsServerEvents> {
  private readonly source: XdsConfigSource;
  private readonly log: Logger;
  private readonly controlPlane: Buffer;
  private readonly closeGraceMs: number;
  private readonly streams = new Set<AdsStream>();
  private readonly unsubscribe: () => void;
  private readonly badResources = new WeakSet<object>();
  private readonly servers: grpc.Server[] = [];
  private nextStreamId = 1;
  private nonceCounter = 0;
  private pushScheduled: NodeJS.Immediate | undefined;
  private pass: PushPass | undefined;
  /** A change arrived while a pass was running: run another once it ends. */
  private rerun = false;
  private closed = false;

  constructor(source: XdsConfigSource, opts: AdsServerOptions) {
    super();
    this.source = source;
    this.log = opts.logger;
    this.controlPlane = controlPlaneField(opts.controlPlaneId ?? 'weft');
    this.closeGraceMs = opts.closeGraceMs ?? 2000;
    // Changes arrive in bursts (one store write can touch many resources); one push pass per
    // turn of the event loop sends the final state once.
    this.unsubscribe = source.onChange(() => {
      if (this.pass !== undefined) this.rerun = true;
      else this.schedulePass();
    });
  }

  /**
   * Adds the ADS service to a server the caller owns (to share a port with other services);
   * `authorize` judges each of its streams.
   */
  register(server: grpc.Server, authorize?: StreamAuthorizer): void {
    const passThrough = (b: Buffer): Buffer => b;
    const method = (name: string): grpc.MethodDefinition<DiscoveryRequestMessage, Buffer> => ({
      path: ADS_SERVICE + name,
      requestStream: true,
      responseStream: true,
      requestSerialize: () => {
        throw new Error('server side only');
      },
      requestDeserialize: (b: Buffer) => decodeDiscoveryRequest(b),
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    });
    server.addService(
      {
        StreamAggregatedResources: method('StreamAggregatedResources'),
        DeltaAggregatedResources: method('DeltaAggregatedResources'),
      },
      {
        StreamAggregatedResources: (call: AdsCall) => this.handleStream(call, authorize),
        DeltaAggregatedResources: (call: AdsCall) => {
          call.emit('error', {
            code: grpc.status.UNIMPLEMENTED,
            details: 'Weft serves state-of-the-world ADS only: use StreamAggregatedResources',
          });
        },
      },
    );
  }

  /**
   * Starts a server of its own on `host:port` (port 0 picks one); resolves the bound address.
   * May be called more than once: each port has its own credentials and authorizer, and every
   * port serves the same configuration.
   */
  async bind(addr: string, opts: BindOptions = {}): Promise<{ host: string; port: number }> {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
    this.register(server, opts.authorize);
    const credentials = opts.credentials ?? grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(addr, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    ).catch((err: unknown) => {
      server.forceShutdown();
      throw err;
    });
    this.servers.push(server);
    const host = addr.slice(0, addr.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    this.log.info({ host, port, tls: credentials._isSecure() }, 'xDS server listening');
    return { host, port };
  }

  listProxies(): ProxyStatus[] {
    const out: ProxyStatus[] = [];
    for (const s of this.streams) {
      if (s.node === undefined) continue;
      const types: Partial<Record<TypeUrl, TypeStatus>> = {};
      for (const st of s.types.values()) {
        const status: TypeStatus = {
          wildcard: st.wildcard,
          names: [...st.names].sort(),
          ackedVersion: st.ackedVersion,
          pending: st.pending,
        };
        if (st.lastSentNonce !== '') {
          status.lastSent = {
            version: st.lastSentVersion,
            nonce: st.lastSentNonce,
            at: new Date(st.lastSentAt).toISOString(),
          };
        }
        if (st.lastNack) status.lastNack = { ...st.lastNack };
        types[st.typeUrl] = status;
      }
      out.push({
        streamId: s.id,
        node: s.node,
        peer: s.peer,
        identity: s.identity,
        connectedSince: new Date(s.since).toISOString(),
        types,
      });
    }
    return out;
  }

  /** Ends every stream (clients reconnect elsewhere), then stops; forced after the grace time. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.pushScheduled !== undefined) clearImmediate(this.pushScheduled);
    this.pass = undefined;
    for (const s of this.streams) {
      s.closed = true;
      s.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server shutting down' });
    }
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, this.closeGraceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }

  // -------------------------------------------------------------------------------------------

  private handleStream(call: AdsCall, authorize: StreamAuthorizer | undefined): void {
    if (this.closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS server shutting down' });
      return;
    }
    const stream: AdsStream = {
      id: this.nextStreamId++,
      call,
      peer: call.getPeer(),
      identity: 'unauthenticated',
      since: Date.now(),
      node: undefined,
      types: new Map(),
      closed: false,
      blocked: false,
      base: undefined,
      fresh: true,
    };
    this.streams.add(stream);
    const finish = (): void => {
      if (!this.streams.delete(stream)) return;
      stream.closed = true;
      if (stream.node !== undefined) {
        this.log.info({ nodeId: stream.node.id, peer: stream.peer }, 'xDS stream closed');
        this.emit('disconnect', { streamId: stream.id, nodeId: stream.node.id, peer: stream.peer });
      }
    };
    const handle = (req: DiscoveryRequestMessage): void => {
      try {
        this.handleRequest(stream, req);
      } catch (err) {
        this.log.error({ err, nodeId: stream.node?.id }, 'xDS request handling failed');
        call.emit('error', {
          code: grpc.status.INTERNAL,
          details: 'internal error handling DiscoveryRequest',
        });
        finish();
      }
    };
    // A stream lives no longer than the credential it was opened with: the proxy reconnects
    // with its renewed one (and is judged again), keeping its config meanwhile.
    let cancelExpiry = (): void => undefined;
    const expireAt = (at: number): void => {
      cancelExpiry = systemClock.setTimer(
        () =>
          refuse(
            grpc.status.UNAUTHENTICATED,
            'the credential this stream was opened with has expired; reconnect',
          ),
        Math.max(0, at - Date.now()),
      );
    };
    call.once('close', () => cancelExpiry());
    // With an authorizer, nothing is handled until the first request's node is judged.
    let queued: DiscoveryRequestMessage[] | undefined = authorize ? [] : undefined;
    const refuse = (code: grpc.status, details: string): void => {
      this.log.warn({ peer: stream.peer, nodeId: queued?.[0]?.node?.id, details }, 'xDS stream refused');
      call.emit('error', { code, details });
      finish();
    };
    call.on('data', (req: DiscoveryRequestMessage) => {
      if (stream.closed) return;
      if (queued === undefined) return handle(req);
      if (queued.length >= MAX_QUEUED_WHILE_AUTHORIZING) {
        return refuse(
          grpc.status.RESOURCE_EXHAUSTED,
          'too many DiscoveryRequests before the stream was authorized',
        );
      }
      queued.push(req);
      if (queued.length > 1) return;
      if (req.node === null) {
        return refuse(grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest on a stream must carry node');
      }
      authorize!(call, nodeInfo(req.node)).then(
        (grant) => {
          if (stream.closed) return;
          if (!grant.ok) return refuse(grant.code, grant.details);
          stream.identity = grant.identity;
          if (grant.expiresAt !== undefined) expireAt(grant.expiresAt);
          if (grant.onRevoked !== undefined) {
            const unsubscribe = grant.onRevoked(() => {
              if (!stream.closed)
                refuse(grpc.status.UNAUTHENTICATED, 'the credential this stream was opened with was revoked');
            });
            call.once('close', unsubscribe);
          }
          const waiting = queued ?? [];
          queued = undefined;
          for (const r of waiting) if (!stream.closed) handle(r);
        },
        (err: unknown) => {
          this.log.error({ err, peer: stream.peer }, 'xDS stream authorization failed');
          refuse(grpc.status.UNAVAILABLE, 'the control plane could not authorize the stream; retry');
        },
      );
    });
    call.on('end', () => {
      call.end();
      finish();
    });
    call.on('error', finish);
    call.on('cancelled', finish);
    call.on('close', finish);
  }

  private handleRequest(stream: AdsStream, req: DiscoveryRequestMessage): void {
    if (stream.closed) return;
    if (stream.node === undefined) {
      if (req.node === null) {
        stream.call.emit('error', {
          code: grpc.status.INVALID_ARGUMENT,
          details: 'the first DiscoveryRequest on a stream must carry node',
        });
        return;
      }
      stream.node = nodeInfo(req.node);
      this.log.info(
        { nodeId: stream.node.id, peer: stream.peer, identity: stream.identity },
        'xDS stream opened',
      );
      this.emit('connect', { streamId: stream.id, nodeId: stream.node.id, peer: stream.peer });
    }
    const node = stream.node;
    if (!KNOWN_TYPES.has(req.type_url)) {
      this.log.debug(
        { nodeId: node.id, typeUrl: req.type_url },
        'ignoring DiscoveryRequest for an unserved type',
      );
      return;
    }
    const typeUrl = req.type_url as TypeUrl;
    let st = stream.types.get(typeUrl);
    const first = st === undefined;
    if (st === undefined) {
      st = {
        typeUrl,
        wildcard: false,
        legacyWildcard: false,
        names: new Set(),
        sent: new Map(),
        lastSentVersion: '',
        lastSentNonce: '',
        lastSentAt: 0,
        ackedVersion: req.version_info,
        pending: false,
        lastNack: undefined,
        lastRequested: undefined,
      };
      stream.types.set(typeUrl, st);
    } else if (req.response_nonce !== st.lastSentNonce) {
      // Stale: the proxy has not seen our latest response yet and will answer it; its later
      // request carries the current subscriptions, so nothing here is lost by ignoring it.
      this.log.debug(
        { nodeId: node.id, typeUrl, nonce: req.response_nonce },
        'ignoring stale DiscoveryRequest',
      );
      return;
    }

    if (req.response_nonce !== '') {
      const base = {
        streamId: stream.id,
        nodeId: node.id,
        peer: stream.peer,
        typeUrl,
        nonce: req.response_nonce,
      };
      st.pending = false;
      if (req.error_detail !== null) {
        const message = req.error_detail.message;
        st.lastNack = {
          version: st.lastSentVersion,
          nonce: req.response_nonce,
          message,
          at: new Date().toISOString(),
        };
        // The NACK's version_info is what the proxy still runs: its last good version.
        st.ackedVersion = req.version_info;
        this.log.warn(
          { nodeId: node.id, typeUrl, version: st.lastSentVersion, message },
          'proxy rejected xDS update (NACK)',
        );
        this.emit('nack', { ...base, version: st.lastSentVersion, message });
      } else {
        st.ackedVersion = st.lastSentVersion;
        this.emit('ack', { ...base, version: st.lastSentVersion });
      }
    }

    const added = this.updateSubscription(st, req.resource_names, first);
    if (added || first) {
      const desired = this.desiredFor(node);
      if (desired !== undefined) {
        this.pushType(stream, st, desired, true);
        // This type now matches `desired`; the others still match the old base. Only if both
        // are the same set is the stream as a whole reconciled against one set.
        stream.base = stream.fresh || stream.base === desired.resources ? desired.resources : undefined;
        stream.fresh = false;
      }
    }
  }

  /** Applies the request's names; true if something new is wanted (so an answer is due now). */
  private updateSubscription(st: TypeState, requested: string[], first: boolean): boolean {
    // Most requests are ACKs repeating the previous list; applying it again would change
    // nothing, so skip the allocation (this runs once per proxy per push).
    const last = st.lastRequested;
    st.lastRequested = requested;
    if (!first && last !== undefined && sameList(last, requested)) return false;
    let wildcard: boolean;
    if (requested.length === 0) {
      if (first && FULL_STATE.has(st.typeUrl)) st.legacyWildcard = true;
      wildcard = st.legacyWildcard;
    } else {
      st.legacyWildcard = false;
      wildcard = requested.includes('*');
    }
    let added = wildcard && !st.wildcard;
    const names = new Set<string>();
    for (const n of requested) {
      if (n === '*') continue;
      names.add(n);
      if (!st.names.has(n) && !st.wildcard) added = true;
    }
    st.wildcard = wildcard;
    st.names = names;
    if (!wildcard) {
      // Forget what was sent for dropped names, so a later re-subscription gets them again.
      for (const n of st.sent.keys()) if (!names.has(n)) st.sent.delete(n);
    }
    return added;
  }

  private schedulePass(): void {
    if (this.pushScheduled !== undefined || this.closed) return;
    this.pushScheduled = setImmediate(() => {
      this.pushScheduled = undefined;
      this.pass = { streams: this.streams.values(), diffs: new Map() };
      this.continuePass();
    });
  }

  /**
   * Runs the current pass for one slice, then yields. The stream set is iterated live: streams
   * that open meanwhile were answered from the current state and are visited if reached;
   * closed ones are skipped. `resourcesFor` is asked at each visit, so a change that lands
   * mid-pass reaches the rest of this pass, and the rerun covers streams already visited.
   */
  private continuePass(): void {
    const pass = this.pass;
    if (pass === undefined || this.closed) return;
    let sends = 0;
    let visits = 0;
    while (sends < SENDS_PER_TURN && visits < VISITS_PER_TURN) {
      const next = pass.streams.next();
      if (next.done === true) {
        this.pass = undefined;
        if (this.rerun) {
          this.rerun = false;
          this.schedulePass();
        }
        return;
      }
      const stream = next.value;
      visits++;
      if (stream.node === undefined || stream.closed) continue;
      sends += this.reconcile(stream, pass);
    }
    this.pushScheduled = setImmediate(() => {
      this.pushScheduled = undefined;
      this.continuePass();
    });
  }

  /** Brings one stream up to the current state; returns how many responses were sent. */
  private reconcile(stream: AdsStream, pass: PushPass): number {
    if (stream.blocked) return 0;
    const desired = this.desiredFor(stream.node!);
    if (desired === undefined) return 0;
    const base = stream.base;
    if (base === desired.resources) return 0;
    const diff = base === undefined ? undefined : this.diffOf(pass, base, desired.resources);
    let sends = 0;
    for (const typeUrl of PUSH_ORDER) {
      const st = stream.types.get(typeUrl);
      if (st === undefined) continue;
      if (diff !== undefined) {
        const changed = diff.get(typeUrl);
        if (changed === undefined || !(st.wildcard || intersects(st.names, changed))) continue;
      }
      if (this.pushType(stream, st, desired, false)) sends++;
    }
    if (!stream.closed) stream.base = desired.resources;
    stream.fresh = false;
    return sends;
  }

  private diffOf(pass: PushPass, prev: ResourceSet, next: ResourceSet): SetDiff {
    let byNext = pass.diffs.get(prev);
    if (byNext === undefined) {
      byNext = new Map();
      pass.diffs.set(prev, byNext);
    }
    let diff = byNext.get(next);
    if (diff === undefined) {
      diff = diffSets(prev, next);
      byNext.set(next, diff);
    }
    return diff;
  }

  private desiredFor(node: NodeInfo): { version: string; resources: ResourceSet } | undefined {
    try {
      return this.source.resourcesFor(node);
    } catch (err) {
      this.log.error({ err, nodeId: node.id }, 'xDS config source failed; nothing pushed');
      return undefined;
    }
  }

  /**
   * Sends what the proxy lacks for one type. `answer` is set when a request is being answered
   * (first request, new names): then a full-state type is sent even if unchanged, so the proxy
   * learns which names do not exist. Returns whether a response was sent.
   */
  private pushType(
    stream: AdsStream,
    st: TypeState,
    desired: { version: string; resources: ResourceSet },
    answer: boolean,
  ): boolean {
    const available = desired.resources.get(st.typeUrl) ?? NO_RESOURCES;
    const fullState = FULL_STATE.has(st.typeUrl);
    const sent = st.sent;

    // First pass: does anything differ from what was sent? Allocates nothing when not, which
    // is the common case for most streams on most changes.
    let changed = false;
    let count = 0;
    if (st.wildcard) {
      for (const [name, obj] of available) {
        const enc = this.encode(st.typeUrl, name, obj);
        if (enc === undefined) continue;
        count++;
        if (sent.get(name) !== enc.hash) changed = true;
      }
    } else {
      for (const name of st.names) {
        const obj = available.get(name);
        if (obj === undefined) continue;
        const enc = this.encode(st.typeUrl, name, obj);
        if (enc === undefined) continue;
        count++;
        if (sent.get(name) !== enc.hash) changed = true;
      }
    }
    if (!changed) {
      if (fullState) {
        if (count !== sent.size)
          changed = true; // something was deleted
        else if (!answer) return false;
      } else {
        // RDS/EDS/SDS: SotW does not signal deletions; forget them so a return is re-sent.
        if (count !== sent.size) this.pruneSent(st, available);
        return false;
      }
    }

    // Second pass: collect what to send (everything for full-state types, else the changes).
    const out: EncodedResource[] = [];
    const wanted = st.wildcard ? available.keys() : st.names.values();
    for (const name of wanted) {
      const obj = available.get(name);
      if (obj === undefined) continue;
      const enc = this.encode(st.typeUrl, name, obj);
      if (enc !== undefined && (fullState || sent.get(name) !== enc.hash)) out.push(enc);
    }
    if (fullState) sent.clear();
    else this.pruneSent(st, available);
    for (const enc of out) sent.set(enc.name, enc.hash);
    this.send(stream, st, out, desired.version);
    return true;
  }

  private pruneSent(st: TypeState, available: ReadonlyMap<string, object>): void {
    for (const name of st.sent.keys()) if (!available.has(name)) st.sent.delete(name);
  }

  private encode(typeUrl: TypeUrl, name: string, obj: object): EncodedResource | undefined {
    if (this.badResources.has(obj)) return undefined;
    try {
      return encodeForResponse(typeUrl, name, obj);
    } catch (err) {
      // A compiler bug: leave the resource out (logged once per object) rather than stop
      // serving everyone else.
      this.badResources.add(obj);
      this.log.error({ err, typeUrl, name }, 'cannot encode xDS resource; not sent');
      return undefined;
    }
  }

  private send(stream: AdsStream, st: TypeState, resources: EncodedResource[], version: string): void {
    const nonce = (++this.nonceCounter).toString(36);
    const bytes = buildDiscoveryResponse(version, resources, st.typeUrl, nonce, this.controlPlane);
    st.lastSentVersion = version;
    st.lastSentNonce = nonce;
    st.lastSentAt = Date.now();
    st.pending = true;
    if (!stream.call.write(bytes) && !stream.blocked) {
      stream.blocked = true;
      this.log.debug({ nodeId: stream.node?.id }, 'proxy is not reading; holding pushes until it drains');
      stream.call.once('drain', () => {
        stream.blocked = false;
        if (stream.closed || stream.node === undefined) return;
        // What it missed is unknown per set: compare everything against what was sent.
        stream.base = undefined;
        this.reconcile(stream, { streams: [][Symbol.iterator](), diffs: new Map() });
      });
    }
    if (this.listenerCount('send') > 0) {
      this.emit('send', {
        streamId: stream.id,
        nodeId: stream.node?.id ?? '',
        peer: stream.peer,
        typeUrl: st.typeUrl,
        version,
        nonce,
        names: resources.map((r) => r.name),
      });
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function intersects(names: ReadonlySet<string>, changed: ReadonlySet<string>): boolean {
  const [small, large] = names.size <= changed.size ? [names, changed] : [changed, names];
  for (const n of small) if (large.has(n)) return true;
  return false;
}

/**
 * Names whose object differs between two sets, per type. Identity, not content: the source
 * keeps unchanged resources' objects, and a source that does not merely makes the diff large
 * (every name), which pushType's hash comparison then filters exactly as before.
 */
function diffSets(prev: ResourceSet, next: ResourceSet): SetDiff {
  const diff: SetDiff = new Map();
  for (const typeUrl of PUSH_ORDER) {
    const a = prev.get(typeUrl) ?? NO_RESOURCES;
    const b = next.get(typeUrl) ?? NO_RESOURCES;
    if (a === b) continue;
    const changed = new Set<string>();
    for (const [name, obj] of b) if (a.get(name) !== obj) changed.add(name);
    for (const name of a.keys()) if (!b.has(name)) changed.add(name);
    if (changed.size > 0) diff.set(typeUrl, changed);
  }
  return diff;
}

function nodeInfo(n: NonNullable<DiscoveryRequestMessage['node']>): NodeInfo {
  return {
    id: n.id ?? '',
    cluster: n.cluster ?? '',
    metadata: structToJson(n.metadata),
    userAgentName: n.user_agent_name ?? '',
    userAgentVersion: n.user_agent_version ?? '',
  };
}
