// Feeds the ADS server from the mesh state: compiles once per (store revision, node class) and
// hands every proxy of that class the same objects. A resource that compiles to the same content
// as before keeps its previous object identity, so the ADS server's per-object encoding cache
// hits, and its push pass (which diffs resource sets by identity) skips proxies that do not
// subscribe to anything that changed.

import { compile, type NodeView, type SidecarView } from '../compiler/compile.js';
import { SDS_ROOT_CA } from '../compiler/mtls.js';
import { TypeUrl, type NodeInfo, type ResourceSet } from '../xds/types.js';
import type { MeshState } from './mesh-state.js';

interface CompiledClass {
  revision: number;
  resources: ResourceSet;
  /** Asked for since the last change: classes nobody asks for any more are dropped then. */
  used: boolean;
}

/**
 * Node classes come from what proxies say about themselves (their namespace), so their number is
 * not ours to choose: past this many the least recently used are dropped (and recompiled if
 * they come back).
 */
const MAX_CLASSES = 256;

/**
 * What the compiler needs to know of a node: its namespace (Istio's NAMESPACE metadata key,
 * else `default`) and whether it is a proxyless gRPC client (our bootstrap's WEFT_PROXY_TYPE,
 * else gRPC's own user agent name, "gRPC …"), which must not be sent redirect routes.
 */
export function nodeView(node: NodeInfo): NodeView {
  const ns = node.metadata.NAMESPACE;
  const type = node.metadata.WEFT_PROXY_TYPE;
  const proxyless =
    typeof type === 'string' ? type === 'proxyless-grpc' : node.userAgentName.startsWith('gRPC');
  const view: NodeView = { namespace: typeof ns === 'string' && ns !== '' ? ns : 'default', proxyless };
  if (type === 'sidecar') {
    const sidecar = sidecarView(node.metadata);
    if (sidecar) view.sidecar = sidecar;
  }
  return view;
}

function hostPort(v: unknown): { host: string; port: number } | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = Number(m?.[3]);
  // Port 0 is allowed: the sidecar binds a free port (tests, several sidecars on one host).
  return m && port >= 0 && port < 65536 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

const PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'TCP']);

/**
 * The sidecar's own listeners, from its node metadata: OUTBOUND_ADDR and INBOUND_ADDR
 * (`host:port`), APP_PORT, APP_PROTOCOL (HTTP|HTTP2|GRPC|TCP), and TCP_UPSTREAMS
 * (`svc[.ns]:port=localPort,…`), WORKLOAD_NAME (with NAMESPACE). Anything malformed: no sidecar listeners (the node still gets
 * clusters and routes), rather than listeners on addresses it did not ask for.
 */
export function sidecarView(md: Record<string, unknown>): SidecarView | undefined {
  const outbound = hostPort(md.OUTBOUND_ADDR);
  if (!outbound) return undefined;
  // No APP_PORT: a client-only workload, with no inbound side.
  const hasApp = md.APP_PORT !== undefined && md.APP_PORT !== '';
  const inbound = hostPort(md.INBOUND_ADDR);
  const appPort = Number(md.APP_PORT);
  const protocol = typeof md.APP_PROTOCOL === 'string' ? md.APP_PROTOCOL.toUpperCase() : 'HTTP';
  if (hasApp && (!inbound || !Number.isInteger(appPort) || appPort < 1 || appPort > 65535)) return undefined;
  if (!PROTOCOLS.has(protocol)) return undefined;
  const tcpUpstreams: SidecarView['tcpUpstreams'] = [];
  const raw = typeof md.TCP_UPSTREAMS === 'string' ? md.TCP_UPSTREAMS : '';
  for (const item of raw.split(',').filter((x) => x !== '')) {
    const m = /^([a-z0-9][-a-z0-9.]*):(\d{1,5})=(\d{1,5})$/.exec(item.trim());
    if (!m) return undefined;
    tcpUpstreams.push({ service: m[1]!, port: Number(m[2]), localPort: Number(m[3]) });
  }
  const view: SidecarView = { outbound, tcpUpstreams };
  // Our sidecar names the Workload it registers; its policies follow the Services selecting it.
  const ns = typeof md.NAMESPACE === 'string' && md.NAMESPACE !== '' ? md.NAMESPACE : 'default';
  if (typeof md.WORKLOAD_NAME === 'string' && md.WORKLOAD_NAME !== '')
    view.workload = `${ns}/${md.WORKLOAD_NAME}`;
  if (hasApp && inbound) {
    view.inbound = {
      ...inbound,
      appPort,
      protocol: protocol as NonNullable<SidecarView['inbound']>['protocol'],
    };
  }
  return view;
}

function classKeyOf(view: NodeView): string {
  return `${view.namespace}|${view.proxyless ? 'proxyless' : 'proxy'}|${view.sidecar ? JSON.stringify(view.sidecar) : ''}`;
}

export class MeshXdsSource {
  private readonly classes = new Map<string, CompiledClass>();

  /**
   * `trustDomain`: the CA's; with it sidecars get mTLS listeners and clusters (the SPIFFE IDs
   * they verify are in this trust domain).
   */
  private readonly bundleListeners = new Set<() => void>();
  private bundle: { pem: string; secrets: Map<string, object>; since: number } | undefined;
  /**
   * A class's resources with the Secret added, kept per resource set and bundle: the ADS server
   * diffs sets by object identity, so a new set per call would make every push pass compare
   * every stream in full.
   */
  private readonly withSecretsCache = new WeakMap<ResourceSet, { bundle: object; set: ResourceSet }>();

  constructor(
    private readonly state: MeshState,
    private readonly opts: { trustDomain?: string } = {},
  ) {
    // Before each new revision's pass: forget classes no stream asked for since the last one.
    state.prependListener('change', () => {
      for (const [key, c] of this.classes) {
        if (c.used) c.used = false;
        else this.classes.delete(key);
      }
    });
  }

  /** How many node classes are compiled and kept (for tests and metrics). */
  classCount(): number {
    return this.classes.size;
  }

  resourcesFor(node: NodeInfo): { version: string; resources: ResourceSet } {
    const view = nodeView(node);
    if (view.sidecar && this.opts.trustDomain !== undefined) view.trustDomain = this.opts.trustDomain;
    const classKey = classKeyOf(view);
    const revision = this.state.revision();
    const prev = this.classes.get(classKey);
    if (prev && prev.revision === revision) {
      prev.used = true;
      return { version: String(revision), resources: this.withSecrets(prev.resources) };
    }

    const fresh = compile(this.state.model(), view);
    for (const [type, byName] of fresh) {
      const old = prev?.resources.get(type);
      if (old === undefined) continue;
      for (const [name, obj] of byName) {
        const before = old.get(name);
        if (before !== undefined && sameContent(before, obj)) byName.set(name, before);
      }
    }
    // Re-inserted last, so the map's order is least recently compiled first.
    this.classes.delete(classKey);
    this.classes.set(classKey, { revision, resources: fresh, used: true });
    for (const key of this.classes.keys()) {
      if (this.classes.size <= MAX_CLASSES) break;
      this.classes.delete(key);
    }
    return { version: String(revision), resources: this.withSecrets(fresh) };
  }

  onChange(listener: () => void): () => void {
    this.state.on('change', listener);
    this.bundleListeners.add(listener);
    return () => {
      this.state.off('change', listener);
      this.bundleListeners.delete(listener);
    };
  }

  /**
   * The mesh trust bundle, served over SDS as the Secret `ROOTCA` (Envoy's
   * `validation_context.trusted_ca.inline_bytes`) to proxies that subscribe to it. Only roots:
   * the secret `default` (a workload's SVID and key) is never served here, each proxy holds
   * its own, as Istio's node agent does. A new bundle (CA rotation) is pushed at once.
   */
  setTrustBundle(pem: string): void {
    if (this.bundle?.pem === pem) return;
    this.bundle = {
      pem,
      secrets: new Map([
        [
          SDS_ROOT_CA,
          { name: SDS_ROOT_CA, validation_context: { trusted_ca: { inline_bytes: Buffer.from(pem) } } },
        ],
      ]),
      since: Date.now(),
    };
    for (const listener of this.bundleListeners) listener();
  }

  /** The bundle served as `ROOTCA`, and since when (ms since the epoch): every push of it is later. */
  trustBundle(): { pem: string; since: number } | undefined {
    return this.bundle && { pem: this.bundle.pem, since: this.bundle.since };
  }

  /** The resources of a node's class plus the SDS secret, when there is a bundle. */
  private withSecrets(resources: ResourceSet): ResourceSet {
    const bundle = this.bundle;
    if (!bundle) return resources;
    const hit = this.withSecretsCache.get(resources);
    if (hit?.bundle === bundle) return hit.set;
    const set: ResourceSet = new Map(resources);
    set.set(TypeUrl.Secret, bundle.secrets);
    this.withSecretsCache.set(resources, { bundle, set });
    return set;
  }
}

/**
 * Deep equality of compiler output (plain objects, arrays, scalars, bytes). It replaced
 * comparing JSON.stringify texts, which cost a string per resource per revision (1,000
 * services: ~9,000 strings per change) and kept them all alive between changes. As with JSON,
 * a key whose value is undefined counts as absent; unlike JSON, key order does not matter,
 * which is right because the protobuf encoding does not depend on it either.
 */
export function sameContent(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameContent(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let defined = 0;
  for (const k of Object.keys(x)) {
    const v = x[k];
    if (v === undefined) continue;
    defined++;
    if (!sameContent(v, y[k])) return false;
  }
  for (const k of Object.keys(y)) if (y[k] !== undefined) defined--;
  return defined === 0;
}
