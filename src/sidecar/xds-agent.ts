// The sidecar's xDS agent: one ADS stream to the control plane, subscribed as Envoy subscribes
// (LDS and CDS wildcard, then RDS for the route configs the accepted listeners name and EDS for
// the accepted EDS clusters), every update translated together with the rest of the state it
// would produce. A state that does not translate is NACKed with the translator's messages and
// the RuntimeConfig in force stays; one that does is ACKed and emitted as a new RuntimeConfig.
// While the control plane is unreachable the last good config keeps serving (the ADS client
// reconnects with backoff and jitter and resubscribes). It also subscribes to the SDS secret
// `ROOTCA`, the mesh trust bundle, and hands each accepted one on ('trustBundle'): that is how a
// root rotation's new root reaches a running sidecar before anything is signed with it. The
// secret `default` (the SVID and its key) is never asked for: the key never leaves the sidecar.
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { AdsClient, type AdsClientNode, type AdsUpdate, type AckNackEvent } from '../xds/ads-client.js';
import type { ChannelTls } from '../xds/grpc-channel.js';
import { TypeUrl } from '../xds/types.js';
import {
  nackMessage,
  referencedNames,
  translate,
  type ConfigProblem,
  type Pending,
  type XdsResources,
} from './config/translate.js';
import { ProblemSink } from './config/problems.js';
import { SDS_ROOT_CA } from './config/transport-socket.js';
import { translateTrustBundle } from './config/trust-bundle.js';
import type { ConfigVersions, RuntimeConfig } from './runtime-config.js';

export interface XdsAgentOptions {
  /** `host:port` of the control plane's xDS server. */
  address: string;
  /** Who this sidecar is; `metadata.WEFT_PROXY_TYPE` defaults to `sidecar`. */
  node: AdsClientNode;
  backoff?: { baseMs?: number; maxMs?: number };
  /** See AdsClientOptions.tls: a function is asked again at every new connection. */
  tls?: ChannelTls | (() => ChannelTls);
  logger?: Logger;
}

/** The last update the agent refused, as it told the control plane. */
export interface NackInfo {
  typeUrl: TypeUrl;
  version: string;
  nonce: string;
  message: string;
  /** The translator's problems (empty when the response did not even decode). */
  problems: ConfigProblem[];
  at: string;
}

export interface Readiness {
  ready: boolean;
  /** Why not, when not ready. */
  reason?: string;
}

/** Accepted resources of one type, in the spirit of Envoy's /config_dump. */
export interface TypeDump {
  typeUrl: TypeUrl;
  version: string;
  resources: Record<string, unknown>;
}

export interface ConfigDump {
  node: { id: string; cluster: string };
  connected: boolean;
  ready: boolean;
  pending: Pending;
  listeners: TypeDump;
  routes: TypeDump;
  clusters: TypeDump;
  endpoints: TypeDump;
  /** SDS: `ROOTCA`, the trust bundle (certificates only; no key is ever sent). */
  secrets: TypeDump;
  lastNack?: NackInfo;
}

interface XdsAgentEvents {
  config: [RuntimeConfig];
  /** An accepted `ROOTCA`: the PEM roots to trust, the one the CA signs under first. */
  trustBundle: [string];
  ready: [];
  nack: [NackInfo];
  connected: [];
  disconnected: [];
}

type Kind = keyof XdsResources;
const KIND_OF: Partial<Record<string, Kind>> = {
  [TypeUrl.Listener]: 'listeners',
  [TypeUrl.RouteConfiguration]: 'routes',
  [TypeUrl.Cluster]: 'clusters',
  [TypeUrl.ClusterLoadAssignment]: 'endpoints',
};
const TYPE_OF: Record<Kind, TypeUrl> = {
  listeners: TypeUrl.Listener,
  routes: TypeUrl.RouteConfiguration,
  clusters: TypeUrl.Cluster,
  endpoints: TypeUrl.ClusterLoadAssignment,
};

interface Accepted {
  version: string;
  resources: ReadonlyMap<string, Record<string, unknown>>;
  received: boolean;
}

const NONE: Pending = { listeners: [], routeConfigs: [], endpoints: [] };

function only<V>(m: ReadonlyMap<string, V>, names: readonly string[]): Map<string, V> {
  const out = new Map<string, V>();
  for (const n of names) {
    const v = m.get(n);
    if (v !== undefined) out.set(n, v);
  }
  return out;
}

export class XdsAgent extends EventEmitter<XdsAgentEvents> {
  private readonly client: AdsClient;
  private readonly log: Logger;
  private readonly node: AdsClientNode;
  private readonly accepted: Record<Kind, Accepted> = {
    listeners: { version: '', resources: new Map(), received: false },
    routes: { version: '', resources: new Map(), received: false },
    clusters: { version: '', resources: new Map(), received: false },
    endpoints: { version: '', resources: new Map(), received: false },
  };
  private current: RuntimeConfig | undefined;
  private pendingNow: Pending = NONE;
  private isReady = false;
  private subscribed: { routes?: string; endpoints?: string } = {};
  /** The problems behind the NACK the ADS client is about to send. */
  private lastProblems: ConfigProblem[] = [];
  private nack: NackInfo | undefined;
  /** Set by a successful apply, acted on once the ADS client has ACKed it. */
  private accept: { names: { routes: string[]; endpoints: string[] } } | undefined;
  /** The `ROOTCA` secret accepted last, and the bundle an apply passed, until its ACK. */
  private secrets: Accepted = { version: '', resources: new Map(), received: false };
  private acceptBundle: { version: string; secret: Record<string, unknown>; pem: string } | undefined;

  constructor(opts: XdsAgentOptions) {
    super();
    this.log = opts.logger ?? silentLogger();
    this.node = { ...opts.node, metadata: { WEFT_PROXY_TYPE: 'sidecar', ...opts.node.metadata } };
    this.client = new AdsClient({
      address: opts.address,
      node: this.node,
      subscriptions: {
        [TypeUrl.Cluster]: '*',
        [TypeUrl.Listener]: '*',
        [TypeUrl.Secret]: [SDS_ROOT_CA],
      },
      apply: (u) => this.apply(u),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      logger: this.log,
    });
    this.client.on('ack', (e) => this.onAck(e));
    this.client.on('nack', (e) => this.onNack(e));
    this.client.on('connected', () => this.emit('connected'));
    this.client.on('disconnected', () => this.emit('disconnected'));
  }

  start(): void {
    this.client.start();
  }

  close(): void {
    this.client.close();
  }

  /** The RuntimeConfig in force (undefined until the first accepted update). */
  get config(): RuntimeConfig | undefined {
    return this.current;
  }

  /**
   * Whether the sidecar has had a complete config: Listeners and Clusters received, every
   * listener's route config and every EDS cluster's assignment received. Like Envoy's server
   * state, it stays true once reached: a later warming resource or an outage does not undo it.
   */
  get ready(): boolean {
    return this.isReady;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  readiness(): Readiness {
    if (this.isReady) return { ready: true };
    const waits: string[] = [];
    if (!this.accepted.listeners.received) waits.push('Listeners (LDS)');
    if (!this.accepted.clusters.received) waits.push('Clusters (CDS)');
    if (this.pendingNow.routeConfigs.length > 0)
      waits.push(`route configs ${this.pendingNow.routeConfigs.join(', ')}`);
    if (this.pendingNow.endpoints.length > 0)
      waits.push(`endpoints of ${this.pendingNow.endpoints.join(', ')}`);
    const link = this.client.connected ? '' : ' (control plane not connected)';
    return { ready: false, reason: `waiting for ${waits.join('; ')}${link}` };
  }

  /** Last refused update, if any. */
  lastNack(): NackInfo | undefined {
    return this.nack;
  }

  configDump(): ConfigDump {
    const dump = (kind: Kind): TypeDump => ({
      typeUrl: TYPE_OF[kind],
      version: this.accepted[kind].version,
      resources: Object.fromEntries(this.accepted[kind].resources),
    });
    return {
      node: { id: this.node.id, cluster: this.node.cluster ?? '' },
      connected: this.client.connected,
      ready: this.isReady,
      pending: this.pendingNow,
      listeners: dump('listeners'),
      routes: dump('routes'),
      clusters: dump('clusters'),
      endpoints: dump('endpoints'),
      secrets: {
        typeUrl: TypeUrl.Secret,
        version: this.secrets.version,
        resources: Object.fromEntries(this.secrets.resources),
      },
      ...(this.nack ? { lastNack: this.nack } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------

  /** Translates the whole state this update would produce; a message NACKs it. */
  private apply(update: AdsUpdate): string | undefined {
    if (update.typeUrl === TypeUrl.Secret) return this.applySecret(update);
    const kind = KIND_OF[update.typeUrl];
    if (kind === undefined) return undefined;
    const would: Record<Kind, ReadonlyMap<string, Record<string, unknown>>> = {
      listeners: this.accepted.listeners.resources,
      routes: this.accepted.routes.resources,
      clusters: this.accepted.clusters.resources,
      endpoints: this.accepted.endpoints.resources,
    };
    would[kind] = update.resources;
    // Only what the would-be listeners and clusters name counts (Envoy forgets RDS/EDS resources
    // it unsubscribes from), so a stale route config cannot block or pollute an update.
    const names = referencedNames(would.listeners, would.clusters);
    would.routes = only(would.routes, names.routes);
    would.endpoints = only(would.endpoints, names.endpoints);
    const versions: ConfigVersions = {
      listeners: this.accepted.listeners.version,
      routes: this.accepted.routes.version,
      clusters: this.accepted.clusters.version,
      endpoints: this.accepted.endpoints.version,
    };
    versions[kind] = update.version;
    const result = translate({ ...would, versions, ...(this.current ? { previous: this.current } : {}) });
    if (!result.ok) {
      this.lastProblems = result.problems;
      return nackMessage(result.problems);
    }
    for (const k of Object.keys(would) as Kind[]) {
      const version = k === kind ? update.version : this.accepted[k].version;
      const received = this.accepted[k].received || k === kind;
      this.accepted[k] = { version, resources: would[k], received };
    }
    this.current = result.config;
    this.pendingNow = result.pending;
    this.accept = { names };
    return undefined;
  }

  /** Checks `ROOTCA`; a bundle that is not only CA certificates is NACKed and the last one stays. */
  private applySecret(update: AdsUpdate): string | undefined {
    const secret = update.resources.get(SDS_ROOT_CA);
    if (secret === undefined) return undefined;
    const problems: ConfigProblem[] = [];
    const pem = translateTrustBundle(secret, new ProblemSink('Secret', SDS_ROOT_CA, problems));
    if (pem === undefined) {
      this.lastProblems = problems;
      return nackMessage(problems);
    }
    this.acceptBundle = { version: update.version, secret, pem };
    return undefined;
  }

  private onAck(e: AckNackEvent): void {
    if (e.typeUrl === TypeUrl.Secret) {
      const bundle = this.acceptBundle;
      this.acceptBundle = undefined;
      if (bundle === undefined) return;
      this.secrets = {
        version: bundle.version,
        resources: new Map([[SDS_ROOT_CA, bundle.secret]]),
        received: true,
      };
      this.emit('trustBundle', bundle.pem);
      return;
    }
    const accept = this.accept;
    this.accept = undefined;
    if (accept === undefined || this.current === undefined) return;
    this.log.debug({ typeUrl: e.typeUrl, version: e.version }, 'xDS update accepted');
    this.emit('config', this.current);
    this.follow(TypeUrl.RouteConfiguration, 'routes', accept.names.routes);
    this.follow(TypeUrl.ClusterLoadAssignment, 'endpoints', accept.names.endpoints);
    const complete =
      this.accepted.listeners.received &&
      this.accepted.clusters.received &&
      this.pendingNow.routeConfigs.length === 0 &&
      this.pendingNow.endpoints.length === 0;
    if (complete && !this.isReady) {
      this.isReady = true;
      this.emit('ready');
    }
  }

  /** Subscribes to exactly the names the accepted resources refer to, as Envoy does. */
  private follow(typeUrl: TypeUrl, kind: 'routes' | 'endpoints', names: string[]): void {
    const key = names.join('\n');
    const before = this.subscribed[kind];
    if (before === key || (before === undefined && names.length === 0)) return;
    this.subscribed[kind] = key;
    this.client.subscribe(typeUrl, names);
  }

  private onNack(e: AckNackEvent): void {
    this.accept = undefined;
    this.acceptBundle = undefined;
    this.nack = {
      typeUrl: e.typeUrl,
      version: e.version,
      nonce: e.nonce,
      message: e.message ?? '',
      problems: this.lastProblems,
      at: new Date().toISOString(),
    };
    this.lastProblems = [];
    this.emit('nack', this.nack);
  }
}
