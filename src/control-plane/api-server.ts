// The control plane's REST API (JSON). Paths:
//   GET    /healthz                                   200 once the store is open and xDS listens
//   GET    /version
//   GET    /api/v1/info                               {version, xdsAddress, trustDomain, …}
//   POST   /api/v1/apply[?dryRun=true]                body: {"documents":[…]} or YAML text
//   POST   /api/v1/delete                             body: {"documents":[…]} or YAML text
//   GET    /api/v1/resources/{kind}[?namespace=ns]
//   GET    /api/v1/resources/{kind}/{ns}/{name}[?resourceVersion=N]   (N: an older version)
//   GET    /api/v1/resources/{kind}/{ns}/{name}/history
//   DELETE /api/v1/resources/{kind}/{ns}/{name}[?resourceVersion=N]
//   GET    /api/v1/watch[?kind=K&namespace=ns&fromRevision=N]        NDJSON stream
//   GET    /api/v1/proxies                            connected proxies, ACK/NACK state
//   POST   /api/v1/leases {"ttlSeconds":N}            a lease for registrations (apply ?lease=ID)
//   POST   /api/v1/leases/{id}/keepalive · DELETE /api/v1/leases/{id}
//   POST   /api/v1/svids {"csr":PEM[,"namespace","serviceAccount"]}   an X.509-SVID
//   POST   /api/v1/tokens {"serviceAccount","namespace"?,"ttlSeconds"?,"maxUses"?} · GET /api/v1/tokens
//   POST   /api/v1/tokens/revoke {"token"|"id"}
//   GET    /api/v1/ca                                 the CA: rotation phase, roots, the bundle's reach
//   POST   /api/v1/ca/rotate {"overlapSeconds"?,"prepareSeconds"?,"caCert"?,"caKey"?,"caBundle"?}
//   POST   /api/v1/ca/finish                          end a rotation's overlap now
// Who may call what: see api-auth.ts (admin token, join token, workload SVID; --open-reads).
// Errors are {code, message, errors?[{document, path, message}]} with a 4xx/5xx status.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isWeftError, WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock } from '../store/clock.js';
import type { Store, WatchEvent } from '../store/store.js';
import { WEFT_VERSION } from '../version.js';
import { parseDocuments } from '../resources/index.js';
import { readBody, sendError, sendJson, tlsSocketOf } from '../http-util.js';
import { RESOURCE_PREFIX, type MeshState, type StoredObject } from './mesh-state.js';
import type { ResourceService } from './resource-service.js';
import { resourceStoreKey, withVersion } from './resource-service.js';
import type { AdminToken } from './admin-token.js';
import { forbidden, principalOf, unauthenticated, type Principal } from './api-auth.js';
import { servingTlsOptions, type ControlPlaneIdentity, type ServingCredentials } from './identity.js';
import { caStatusBody, inRequestTerms, readRotationRequest, type BundlePropagation } from './ca-api.js';

export interface ApiDeps {
  store: Store;
  state: MeshState;
  resources: ResourceService;
  proxies: () => unknown[];
  /** What a sidecar needs to know to join: where xDS is served, the trust domain. */
  info: () => { xdsAddress: string; xdsPlaintextAddress?: string; trustDomain: string; workloadApi?: string };
  healthy: () => boolean;
  log: Logger;
  admin: AdminToken;
  identity: ControlPlaneIdentity;
  /** GETs of resources, proxies and watches answer without a credential. */
  openReads: boolean;
  /** SPIFFE IDs whose client certificates are admin credentials. */
  adminIdentities?: ReadonlySet<string>;
  /** How far the trust bundle served over SDS has reached the connected proxies. */
  trustBundle: () => BundlePropagation;
}

/** Where a lease's owner is recorded (bound to the lease, so it goes with it). */
const LEASE_OWNER_PREFIX = '/weft/lease-owners/';

/**
 * How long a kept-open TLS connection carries requests before its next answer closes it. A
 * client's certificate and the roots it was checked against are those of the handshake; this
 * bounds how long a connection outlives a change to either that no rotation announced.
 */
const TLS_CONNECTION_MAX_AGE_MS = 5 * 60_000;

/** The SHA-256 fingerprint of the first certificate of a PEM chain. */
function fingerprint(chainPem: string): string {
  return new X509Certificate(chainPem).fingerprint256;
}

export class ApiServer {
  private readonly server: Server;
  private tlsServer: HttpsServer | undefined;
  private readonly streams = new Set<ServerResponse>();
  /**
   * When each TLS connection was made, and the certificate it was actually served (a handshake
   * begun before a rotation may end after it). Every rotation serves a new certificate.
   */
  private readonly tlsBorn = new WeakMap<object, { at: number; cert?: string }>();
  /** The fingerprint of the certificate served now. */
  private servingCert: string | undefined;
  /**
   * New credentials (a renewed SVID, a CA phase change): new connections get them. Kept-open
   * connections made before do not go on under the roots they were verified with: idle ones
   * are closed now, busy ones after their current answer, and watch streams end (their clients
   * watch again from their last revision).
   */
  private readonly onRotated = (c: ServingCredentials): void => {
    this.servingCert = fingerprint(c.chainPem);
    this.tlsServer?.setSecureContext(servingTlsOptions(c));
    this.tlsServer?.closeIdleConnections();
    for (const s of this.streams) if (tlsSocketOf(s.socket)) s.end();
  };

  /** A TLS connection served another certificate than now's, or older than the limit. */
  private tlsStale(socket: object): boolean {
    const born = this.tlsBorn.get(socket);
    return (
      born === undefined || born.cert !== this.servingCert || Date.now() - born.at > TLS_CONNECTION_MAX_AGE_MS
    );
  }

  constructor(private readonly deps: ApiDeps) {
    this.server = createServer((req, res) => this.serve(req, res));
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    this.handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      // A body we stopped reading (too large) leaves the connection mid-request: close it
      // after the answer so the client's next request does not land in the leftover bytes.
      if (!req.complete) res.setHeader('connection', 'close');
      // Refused a credential over TLS (an expired certificate, say): the client must come back
      // with another, on another connection. (By now the socket may be gone: a body too large.)
      if (tlsSocketOf(req.socket) !== undefined && isWeftError(err) && err.code === 'WEFT_E_UNAUTHENTICATED')
        res.setHeader('connection', 'close');
      sendError(res, err);
    });
  }

  /**
   * The same API over TLS 1.3 with the control plane's SVID, asking for a client certificate:
   * the listener sidecars use, authenticated by their SVIDs (or a join token for the first).
   */
  listenTls(host: string, port: number): Promise<AddressInfo> {
    const server = createTlsServer(
      { ...servingTlsOptions(this.deps.identity.serving()), requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket;
        if (this.tlsStale(socket)) res.setHeader('connection', 'close');
        // Gone stale while this request was served (a rotation meanwhile): closed after it.
        else res.once('finish', () => this.tlsStale(socket) && socket.end());
        this.serve(req, res);
      },
    );
    this.servingCert = fingerprint(this.deps.identity.serving().chainPem);
    server.on('secureConnection', (socket: TLSSocket) =>
      this.tlsBorn.set(socket, { at: Date.now(), cert: socket.getX509Certificate()?.fingerprint256 }),
    );
    this.tlsServer = server;
    this.deps.identity.on('rotated', this.onRotated);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.end();
    this.deps.identity.off('rotated', this.onRotated);
    await Promise.all(
      [this.server, this.tlsServer].map(
        (server) =>
          new Promise<void>((resolve) => {
            if (!server?.listening) return resolve();
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://weft');
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          throw new WeftError(
            'WEFT_E_BAD_REQUEST',
            `malformed percent-encoding in the path: ${url.pathname}`,
          );
        }
      });
    const method = req.method ?? 'GET';
    const { deps } = this;

    if (url.pathname === '/healthz') {
      const ok = deps.healthy();
      return sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'starting' });
    }
    if (url.pathname === '/version') return sendJson(res, 200, { version: WEFT_VERSION });
    if (parts[0] !== 'api' || parts[1] !== 'v1') throw notFound(url.pathname);
    const route = parts.slice(2);

    if (route[0] === 'info' && route.length === 1 && method === 'GET') {
      return sendJson(res, 200, {
        version: WEFT_VERSION,
        ...deps.info(),
        controlPlaneId: deps.identity.spiffeId,
        trustBundle: await deps.identity.trustBundlePem(),
      });
    }
    const principal = principalOf(req, deps.admin, deps.identity.ca.trustDomain, deps.adminIdentities);
    const admin = principal.kind === 'admin';
    const reader = admin || deps.openReads;
    const need: (ok: boolean, what: string) => asserts ok = (ok, what) => {
      if (ok) return;
      throw principal.kind === 'anonymous' ? unauthenticated(what) : forbidden(principal, what);
    };

    if (route[0] === 'svids' && route.length === 1 && method === 'POST') {
      need(principal.kind !== 'anonymous', 'ask for an SVID');
      return sendJson(res, 200, await this.issueSvid(req, principal));
    }
    if (route[0] === 'tokens') {
      need(admin, 'manage join tokens');
      if (route.length === 1 && method === 'POST') {
        const body = await readJson(req);
        const allowed = ['serviceAccount', 'namespace', 'ttlSeconds', 'maxUses'];
        const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
        if (unknown.length > 0) {
          throw new WeftError(
            'WEFT_E_VALIDATION',
            `unknown field "${unknown[0]}"; allowed: ${allowed.join(', ')}`,
            [{ path: unknown[0]!, message: `unknown field; allowed: ${allowed.join(', ')}` }],
          );
        }
        const ttl = body.ttlSeconds;
        if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl))) {
          throw new WeftError('WEFT_E_VALIDATION', 'ttlSeconds must be a number of seconds', [
            { path: 'ttlSeconds', message: 'must be a number of seconds' },
          ]);
        }
        const created = await deps.identity.createJoinToken({
          namespace: (body.namespace ?? 'default') as string,
          serviceAccount: body.serviceAccount as string,
          ...(ttl === undefined ? {} : { ttlMs: Math.round(ttl * 1000) }),
          ...(body.maxUses === undefined ? {} : { maxUses: body.maxUses as number }),
        });
        return sendJson(res, 200, created);
      }
      if (route.length === 1 && method === 'GET') {
        return sendJson(res, 200, { items: await deps.identity.tokens.list() });
      }
      if (route.length === 2 && route[1] === 'revoke' && method === 'POST') {
        const body = await readJson(req);
        const which = body.token ?? body.id;
        if (typeof which !== 'string')
          throw new WeftError('WEFT_E_BAD_REQUEST', 'revoke needs {"token": TOKEN} or {"id": ID}');
        await deps.identity.tokens.revoke(which);
        return sendJson(res, 200, { action: 'revoked' });
      }
    }
    if (route[0] === 'ca') {
      need(admin, 'manage the certificate authority');
      const ca = deps.identity.ca;
      if (route.length === 1 && method === 'GET')
        return sendJson(res, 200, caStatusBody(await ca.status(), deps.trustBundle()));
      if (route.length === 2 && route[1] === 'rotate' && method === 'POST') {
        const rotation = readRotationRequest(await readJson(req), req);
        let status;
        try {
          status = await ca.startRotation(rotation);
        } catch (e) {
          throw inRequestTerms(e);
        }
        deps.log.info(
          { to: status.prepared?.id ?? status.active.id, byo: rotation.supplied !== undefined },
          'CA rotation started through the API',
        );
        return sendJson(res, 200, caStatusBody(status, deps.trustBundle()));
      }
      if (route.length === 2 && route[1] === 'finish' && method === 'POST') {
        const finished = await ca.finishRotation();
        return sendJson(res, 200, { finished, ...caStatusBody(await ca.status(), deps.trustBundle()) });
      }
    }
    if (route[0] === 'apply' && route.length === 1 && method === 'POST') {
      const documents = await readDocuments(req);
      const dryRun = url.searchParams.get('dryRun') === 'true';
      const lease = url.searchParams.get('lease');
      const opts = lease === null ? { dryRun } : { dryRun, lease: parseRevision(lease, 'lease') };
      if (!admin) {
        need(principal.kind === 'workload', 'apply resources');
        if (opts.lease === undefined) throw forbidden(principal, 'apply without a lease of its own');
        await this.checkLeaseOwner(principal, opts.lease);
        ownWorkloads(principal, documents, deps.resources);
      }
      return sendJson(res, 200, await deps.resources.apply(documents, opts));
    }
    if (route[0] === 'leases') {
      need(admin || principal.kind === 'workload', 'use leases');
      if (route.length === 1 && method === 'POST') {
        const body = await readJson(req);
        const granted = await deps.resources.grantLease(body.ttlSeconds);
        if (principal.kind === 'workload') {
          await deps.store.txn([
            {
              type: 'put',
              key: `${LEASE_OWNER_PREFIX}${granted.id}`,
              value: principal.spiffeId,
              lease: granted.id,
            },
          ]);
        }
        return sendJson(res, 200, granted);
      }
      const id = route[1] === undefined ? NaN : parseRevision(route[1], 'lease id');
      if (!admin) await this.checkLeaseOwner(principal, id);
      if (route.length === 3 && route[2] === 'keepalive' && method === 'POST') {
        await deps.resources.keepAlive(id);
        return sendJson(res, 200, { id });
      }
      if (route.length === 2 && method === 'DELETE') {
        await deps.resources.revokeLease(id);
        return sendJson(res, 200, { id, action: 'revoked' });
      }
    }
    if (route[0] === 'delete' && route.length === 1 && method === 'POST') {
      const documents = await readDocuments(req);
      const refs = documents.map((d, i) => refOf(d, i, deps.resources));
      if (!admin) {
        need(principal.kind === 'workload', 'delete resources');
        await this.checkOwnStored(principal, refs);
      }
      return sendJson(res, 200, { results: await deps.resources.delete(refs) });
    }
    if (route[0] === 'proxies' && route.length === 1 && method === 'GET') {
      need(reader, 'list proxies');
      return sendJson(res, 200, { items: deps.proxies() });
    }
    if (route[0] === 'watch' && route.length === 1 && method === 'GET') {
      need(reader, 'watch resources');
      return this.watch(url, res);
    }
    if (route[0] === 'resources' && route.length >= 2) {
      need(method === 'GET' ? reader : admin, method === 'GET' ? 'read resources' : 'change resources');
      const kind = deps.resources.kind(route[1]!);
      if (route.length === 2 && method === 'GET') {
        const ns = url.searchParams.get('namespace');
        const items = deps.state
          .all(kind)
          .filter((r) => ns === null || r.object.metadata.namespace === ns)
          .sort((a, b) => (a.key < b.key ? -1 : 1))
          .map((r) => withVersion(r.object, r.modRevision));
        return sendJson(res, 200, { kind, revision: deps.state.revision(), items });
      }
      if (route.length === 4 || (route.length === 5 && route[4] === 'history')) {
        const [, , ns, name] = route as [string, string, string, string];
        const key = resourceStoreKey(kind, ns, name);
        if (route.length === 5 && method === 'GET') {
          const versions = await deps.store.history(key);
          if (versions.length === 0) throw notFoundObject(kind, ns, name);
          return sendJson(res, 200, {
            items: versions.map((kv) => withVersion(JSON.parse(kv.value) as StoredObject, kv.modRevision)),
          });
        }
        if (method === 'GET') {
          const at = url.searchParams.get('resourceVersion');
          const kv = await deps.store.get(key, at === null ? undefined : { revision: parseRevision(at) });
          if (!kv) throw notFoundObject(kind, ns, name, at);
          return sendJson(res, 200, withVersion(JSON.parse(kv.value) as StoredObject, kv.modRevision));
        }
        if (method === 'DELETE') {
          const rv = url.searchParams.get('resourceVersion');
          const ref = { kind, namespace: ns, name, ...(rv === null ? {} : { resourceVersion: rv }) };
          const [result] = await deps.resources.delete([ref]);
          return sendJson(res, 200, result);
        }
      }
    }
    throw notFound(`${method} ${url.pathname}`);
  }

  /**
   * An SVID for the caller's CSR. A join token entitles its first one (the token is checked,
   * the CSR signed, and only then the token consumed: a bad CSR does not burn it); a workload's
   * current SVID entitles a renewal for the same identity; the admin may name any identity.
   */
  private async issueSvid(req: IncomingMessage, principal: Principal): Promise<object> {
    const body = await readJson(req);
    if (typeof body.csr !== 'string')
      throw new WeftError('WEFT_E_BAD_REQUEST', 'the request needs "csr": a PKCS#10 request in PEM');
    const id = this.deps.identity;
    const tokens = id.tokens;
    let identity: { namespace: string; serviceAccount: string };
    if (principal.kind === 'join-token') identity = await tokens.verify(principal.token);
    else if (principal.kind === 'workload') identity = principal;
    else {
      identity = {
        namespace: typeof body.namespace === 'string' ? body.namespace : 'default',
        serviceAccount: String(body.serviceAccount ?? ''),
      };
    }
    const svid = await id.issue(body.csr, {
      namespace: identity.namespace,
      serviceAccount: identity.serviceAccount,
    });
    if (principal.kind === 'join-token') await tokens.consume(principal.token);
    this.deps.log.info(
      { spiffeId: svid.spiffeId, by: principal.kind, serial: svid.serialNumber },
      'SVID issued',
    );
    return svid;
  }

  private async checkLeaseOwner(principal: Principal, lease: number): Promise<void> {
    if (principal.kind !== 'workload') throw forbidden(principal, `use lease ${lease}`);
    const owner = await this.deps.store.get(`${LEASE_OWNER_PREFIX}${lease}`);
    // The owner record goes with its lease: none means the lease is gone (expired, revoked).
    if (!owner) throw new WeftError('WEFT_E_LEASE_NOT_FOUND', `lease ${lease} not found`);
    if (owner.value !== principal.spiffeId)
      throw forbidden(principal, `use lease ${lease}, which it did not take`);
  }

  /** A workload may delete only Workloads that name its own identity. */
  private async checkOwnStored(
    principal: Extract<Principal, { kind: 'workload' }>,
    refs: Array<{ kind: string; namespace: string; name: string }>,
  ): Promise<void> {
    for (const ref of refs) {
      const kv = await this.deps.store.get(resourceStoreKey(ref.kind, ref.namespace, ref.name));
      const stored = kv ? (JSON.parse(kv.value) as { spec?: { serviceAccount?: unknown } }) : undefined;
      if (
        ref.kind !== 'Workload' ||
        ref.namespace !== principal.namespace ||
        (stored !== undefined && stored.spec?.serviceAccount !== principal.serviceAccount)
      )
        throw forbidden(principal, `delete ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  /** NDJSON: one {type, revision, object} line per change; `fromRevision` replays history. */
  private watch(url: URL, res: ServerResponse): void {
    const kindParam = url.searchParams.get('kind');
    const kind = kindParam === null ? undefined : this.deps.resources.kind(kindParam);
    const ns = url.searchParams.get('namespace');
    const from = url.searchParams.get('fromRevision');
    const prefix = kind === undefined ? RESOURCE_PREFIX : `${RESOURCE_PREFIX}${kind}/`;
    const held: string[] = [];
    let live = false;
    const send = (events: WatchEvent[]): void => {
      for (const ev of events) {
        const line = watchLine(ev);
        if (!line || (ns !== null && line.object.metadata.namespace !== ns)) continue;
        if (!live) {
          held.push(JSON.stringify(line));
          continue;
        }
        res.write(JSON.stringify(line) + '\n');
        // A reader that stops reading must not make us buffer every change for ever: past the
        // limit the stream ends, and the client re-watches from its last revision.
        if (res.writableLength > MAX_WATCH_BUFFER_BYTES) {
          this.deps.log.warn({ prefix }, 'watch client is not reading; closing its stream');
          res.destroy();
        }
      }
    };
    // Errors (bad or compacted revision, unknown kind) must become a 4xx, so the watch is set
    // up before the 200 is sent; events replayed meanwhile are held and written right after.
    const watcher = this.deps.store.watch(
      prefix,
      send,
      from === null ? {} : { fromRevision: parseRevision(from) },
    );
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    live = true;
    for (const l of held) res.write(l + '\n');
    this.streams.add(res);
    // Over TLS with a client certificate: the stream ends when the certificate does.
    const cert = tlsSocketOf(res.socket)?.getPeerX509Certificate();
    const cancelExpiry =
      cert === undefined
        ? undefined
        : systemClock.setTimer(() => res.end(), Date.parse(cert.validTo) - Date.now());
    res.on('close', () => {
      cancelExpiry?.();
      watcher.cancel();
      this.streams.delete(res);
    });
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = JSON.parse((await readBody(req)) || '{}');
  } catch (e) {
    throw new WeftError('WEFT_E_PARSE', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new WeftError('WEFT_E_BAD_REQUEST', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** A workload may apply only Workloads of its own namespace that name its service account. */
function ownWorkloads(
  p: Extract<Principal, { kind: 'workload' }>,
  documents: unknown[],
  resources: ResourceService,
): void {
  documents.forEach((doc, i) => {
    const d = doc as {
      kind?: unknown;
      metadata?: { namespace?: unknown };
      spec?: { serviceAccount?: unknown };
    } | null;
    const kind = typeof d?.kind === 'string' ? resources.kind(d.kind) : undefined;
    const ns = typeof d?.metadata?.namespace === 'string' ? d.metadata.namespace : 'default';
    if (kind !== 'Workload' || ns !== p.namespace || d?.spec?.serviceAccount !== p.serviceAccount) {
      throw forbidden(
        p,
        `apply document ${i}: a workload may register only Workloads in namespace ${p.namespace} ` +
          `with spec.serviceAccount ${p.serviceAccount}`,
      );
    }
  });
}

/** How much unread watch output one client may leave buffered before its stream is closed. */
const MAX_WATCH_BUFFER_BYTES = 16 * 1024 * 1024;

function watchLine(ev: WatchEvent): { type: string; revision: number; object: StoredObject } | undefined {
  if (ev.type === 'put') {
    return {
      type: ev.kv.version === 1 ? 'ADDED' : 'MODIFIED',
      revision: ev.kv.modRevision,
      object: withVersion(JSON.parse(ev.kv.value) as StoredObject, ev.kv.modRevision),
    };
  }
  if (!ev.prev) return undefined;
  const object = JSON.parse(ev.prev.value) as StoredObject;
  return { type: 'DELETED', revision: ev.revision, object: withVersion(object, ev.revision) };
}

async function readDocuments(req: IncomingMessage): Promise<unknown[]> {
  const body = await readBody(req);
  const type = req.headers['content-type'] ?? '';
  if (type.includes('json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (e) {
      throw new WeftError('WEFT_E_PARSE', `request body is not valid JSON: ${(e as Error).message}`);
    }
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      Array.isArray((parsed as { documents?: unknown }).documents)
    ) {
      return (parsed as { documents: unknown[] }).documents;
    }
    return [parsed];
  }
  return parseDocuments(body).documents;
}

function refOf(
  doc: unknown,
  index: number,
  resources: ResourceService,
): { kind: string; namespace: string; name: string } {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  if (typeof d?.kind !== 'string' || typeof d.metadata?.name !== 'string') {
    throw new WeftError(
      'WEFT_E_VALIDATION',
      `document ${index}: needs kind and metadata.name to be deleted`,
      [
        {
          document: index,
          path: typeof d?.kind !== 'string' ? 'kind' : 'metadata.name',
          message: 'required',
        },
      ],
    );
  }
  const namespace = typeof d.metadata.namespace === 'string' ? d.metadata.namespace : 'default';
  return { kind: resources.kind(d.kind), namespace, name: d.metadata.name };
}

function parseRevision(text: string, what = 'revision'): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new WeftError('WEFT_E_BAD_REQUEST', `${what} must be a positive integer, got "${text}"`);
  }
  return n;
}

function notFound(what: string): WeftError {
  return new WeftError('WEFT_E_NOT_FOUND', `no such API path: ${what}; see the API reference in docs/api.md`);
}

function notFoundObject(kind: string, ns: string, name: string, at?: string | null): WeftError {
  return new WeftError(
    'WEFT_E_NOT_FOUND',
    at ? `${kind} ${ns}/${name} has no version at resourceVersion ${at}` : `${kind} ${ns}/${name} not found`,
  );
}
