// The control plane's REST API (JSON). Paths:
//   GET    /healthz                                   200 once the store is open and xDS listens
//   GET    /version
//   GET    /api/v1/info                               {version, xdsAddress, trustDomain}
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
// Errors are {code, message, errors?[{document, path, message}]} with a 4xx/5xx status.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store, WatchEvent } from '../store/store.js';
import { WEFT_VERSION } from '../version.js';
import { parseDocuments } from '../resources/index.js';
import { readBody, sendError, sendJson } from '../http-util.js';
import { RESOURCE_PREFIX, type MeshState, type StoredObject } from './mesh-state.js';
import type { ResourceService } from './resource-service.js';
import { resourceStoreKey, withVersion } from './resource-service.js';

export interface ApiDeps {
  store: Store;
  state: MeshState;
  resources: ResourceService;
  proxies: () => unknown[];
  /** What a sidecar needs to know to join: where xDS is served, the trust domain. */
  info: () => { xdsAddress: string; trustDomain: string };
  healthy: () => boolean;
  log: Logger;
}

export class ApiServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly deps: ApiDeps) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        // A body we stopped reading (too large) leaves the connection mid-request: close it
        // after the answer so the client's next request does not land in the leftover bytes.
        if (!req.complete) res.setHeader('connection', 'close');
        sendError(res, err);
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
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
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

    if (route[0] === 'apply' && route.length === 1 && method === 'POST') {
      const documents = await readDocuments(req);
      const dryRun = url.searchParams.get('dryRun') === 'true';
      const lease = url.searchParams.get('lease');
      const opts = lease === null ? { dryRun } : { dryRun, lease: parseRevision(lease, 'lease') };
      return sendJson(res, 200, await deps.resources.apply(documents, opts));
    }
    if (route[0] === 'leases') {
      if (route.length === 1 && method === 'POST') {
        let body: { ttlSeconds?: unknown };
        try {
          body = JSON.parse((await readBody(req)) || '{}') as { ttlSeconds?: unknown };
        } catch (e) {
          throw new WeftError('WEFT_E_PARSE', `request body is not valid JSON: ${(e as Error).message}`);
        }
        return sendJson(res, 200, await deps.resources.grantLease(body.ttlSeconds));
      }
      const id = route[1] === undefined ? NaN : parseRevision(route[1], 'lease id');
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
      return sendJson(res, 200, { results: await deps.resources.delete(refs) });
    }
    if (route[0] === 'info' && route.length === 1 && method === 'GET') {
      return sendJson(res, 200, { version: WEFT_VERSION, ...deps.info() });
    }
    if (route[0] === 'proxies' && route.length === 1 && method === 'GET') {
      return sendJson(res, 200, { items: deps.proxies() });
    }
    if (route[0] === 'watch' && route.length === 1 && method === 'GET') {
      return this.watch(url, res);
    }
    if (route[0] === 'resources' && route.length >= 2) {
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
    res.on('close', () => {
      watcher.cancel();
      this.streams.delete(res);
    });
  }
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
