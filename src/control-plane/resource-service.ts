// The one config path's write side: validate → check against stored state → store atomically.
// A batch (one `weft apply` of a multi-document file) is all or nothing: every document is
// validated first, every error is reported with its document and field path, and nothing is
// stored unless all of it can be. Optimistic concurrency: a document that carries
// metadata.resourceVersion is written only if the stored object still has that version; every
// write is also guarded by the version it was computed from, so concurrent applies never
// silently overwrite each other.

import { randomUUID } from 'node:crypto';
import { WeftError, isWeftError, type FieldError } from '../errors.js';
import type { Store, TxnCondition, TxnOp } from '../store/store.js';
import { buildModel } from '../registry/build-model.js';
import type { MeshState } from './mesh-state.js';
import { RESOURCE_PREFIX, modelInput, type StoredObject } from './mesh-state.js';
import { KINDS, findKind, validateBatch } from '../resources/index.js';

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyResult {
  kind: string;
  namespace: string;
  name: string;
  action: ApplyAction;
  resourceVersion: string;
}

export interface Warning {
  document: number;
  message: string;
}

export function resourceStoreKey(kind: string, namespace: string, name: string): string {
  return `${RESOURCE_PREFIX}${kind}/${namespace}/${name}`;
}

/** What the API returns for a stored object: the object plus its current resourceVersion. */
export function withVersion(object: StoredObject, modRevision: number): StoredObject {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(modRevision) } };
}

function sameContent(a: StoredObject, b: StoredObject): boolean {
  return (
    a.apiVersion === b.apiVersion &&
    JSON.stringify(a.spec) === JSON.stringify(b.spec) &&
    JSON.stringify(a.metadata.labels ?? {}) === JSON.stringify(b.metadata.labels ?? {}) &&
    JSON.stringify(a.metadata.annotations ?? {}) === JSON.stringify(b.metadata.annotations ?? {})
  );
}

export class ResourceService {
  constructor(
    private readonly store: Store,
    private readonly state: MeshState,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async apply(
    documents: unknown[],
    opts: { dryRun?: boolean; lease?: number } = {},
  ): Promise<{ results: ApplyResult[]; warnings: Warning[] }> {
    if (documents.length === 0) {
      throw new WeftError('WEFT_E_BAD_REQUEST', 'no documents to apply: the input was empty');
    }
    const validated = validateBatch(documents);
    if (!validated.ok) {
      throw new WeftError('WEFT_E_VALIDATION', summarize(validated.errors), validated.errors);
    }

    const ops: TxnOp[] = [];
    const conditions: TxnCondition[] = [];
    const results: ApplyResult[] = [];
    const conflicts: FieldError[] = [];
    const next = new Map(this.state.all().map((r) => [r.key, r.object]));

    validated.resources.forEach((resource, index) => {
      const r: StoredObject = resource;
      const { kind } = r;
      const { name, namespace, resourceVersion } = r.metadata;
      const key = resourceStoreKey(kind, namespace, name);
      const existing = this.state.get(key);
      if (resourceVersion !== undefined && resourceVersion !== String(existing?.modRevision ?? '')) {
        conflicts.push({
          document: index,
          path: 'metadata.resourceVersion',
          message: existing
            ? `is ${resourceVersion} but ${kind} ${namespace}/${name} is now at ${existing.modRevision}: someone changed it since you read it; get it again and re-apply your change`
            : `is ${resourceVersion} but ${kind} ${namespace}/${name} does not exist (it was deleted); remove resourceVersion to create it again`,
        });
        return;
      }
      const { resourceVersion: _rv, ...meta } = r.metadata;
      const stored: StoredObject = {
        apiVersion: r.apiVersion,
        kind,
        metadata: {
          ...meta,
          creationTimestamp: existing?.object.metadata.creationTimestamp ?? this.now().toISOString(),
          uid: existing?.object.metadata.uid ?? randomUUID(),
          generation: existing
            ? (existing.object.metadata.generation ?? 1) + (sameContent(existing.object, r) ? 0 : 1)
            : 1,
        },
        spec: r.spec,
      };
      // With a lease (a sidecar registering), objects are bound to it; without one, an update
      // keeps whatever binding the object has, so editing a registered Workload by hand does not
      // make it outlive its sidecar.
      const lease = opts.lease ?? existing?.lease ?? 0;
      if (existing && sameContent(existing.object, stored) && existing.lease === lease) {
        results.push({
          kind,
          namespace,
          name,
          action: 'unchanged',
          resourceVersion: String(existing.modRevision),
        });
        return;
      }
      next.set(key, stored);
      ops.push({ type: 'put', key, value: JSON.stringify(stored), lease });
      conditions.push({ key, modRevision: existing?.modRevision ?? 0 });
      results.push({
        kind,
        namespace,
        name,
        action: existing ? 'configured' : 'created',
        resourceVersion: '',
      });
    });

    if (conflicts.length > 0) {
      throw new WeftError('WEFT_E_CONFLICT', summarize(conflicts), conflicts);
    }
    const warnings = [
      ...validated.warnings.map(documentWarning),
      ...routeWarnings(validated.resources, [...next.values()]),
    ];
    if (opts.dryRun || ops.length === 0) return { results, warnings };

    const documentOfKey = new Map<string, number>();
    validated.resources.forEach((r, i) =>
      documentOfKey.set(resourceStoreKey(r.kind, r.metadata.namespace, r.metadata.name), i),
    );
    const { revision } = await this.guardedTxn(ops, conditions, documentOfKey);
    for (const r of results) if (r.action !== 'unchanged') r.resourceVersion = String(revision);
    return { results, warnings };
  }

  /** A lease for registrations: objects applied with it go away when it is not kept alive. */
  async grantLease(ttlSeconds: unknown): Promise<{ id: number; ttlSeconds: number }> {
    if (
      typeof ttlSeconds !== 'number' ||
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds < 1 ||
      ttlSeconds > 3600
    ) {
      throw new WeftError('WEFT_E_VALIDATION', 'ttlSeconds must be an integer from 1 to 3600', [
        {
          path: 'ttlSeconds',
          message: `must be an integer from 1 to 3600, got ${JSON.stringify(ttlSeconds)}`,
        },
      ]);
    }
    return this.store.grantLease(ttlSeconds);
  }

  keepAlive(id: number): Promise<void> {
    return this.store.keepAlive(id);
  }

  revokeLease(id: number): Promise<void> {
    return this.store.revokeLease(id);
  }

  async delete(
    refs: Array<{ kind: string; namespace: string; name: string; resourceVersion?: string }>,
  ): Promise<Array<{ kind: string; namespace: string; name: string; action: 'deleted' }>> {
    const ops: TxnOp[] = [];
    const conditions: TxnCondition[] = [];
    const missing: FieldError[] = [];
    const documentOfKey = new Map<string, number>();
    refs.forEach((ref, index) => {
      const key = resourceStoreKey(ref.kind, ref.namespace, ref.name);
      const earlier = documentOfKey.get(key);
      if (earlier !== undefined) {
        throw new WeftError(
          'WEFT_E_DUPLICATE',
          `document ${index}: names the same resource as document ${earlier}`,
          [{ document: index, path: 'metadata.name', message: `duplicate of document ${earlier}` }],
        );
      }
      documentOfKey.set(key, index);
      const existing = this.state.get(key);
      if (!existing) {
        missing.push({
          document: index,
          path: 'metadata.name',
          message: `${ref.kind} ${ref.namespace}/${ref.name} not found`,
        });
        return;
      }
      if (ref.resourceVersion !== undefined && ref.resourceVersion !== String(existing.modRevision)) {
        throw new WeftError(
          'WEFT_E_CONFLICT',
          `${ref.kind} ${ref.namespace}/${ref.name} is at resourceVersion ${existing.modRevision}, not ${ref.resourceVersion}: it changed since you read it`,
        );
      }
      ops.push({ type: 'delete', key });
      conditions.push({ key, modRevision: existing.modRevision });
    });
    if (missing.length > 0) {
      throw new WeftError('WEFT_E_NOT_FOUND', summarize(missing), missing);
    }
    await this.guardedTxn(ops, conditions, documentOfKey);
    return refs.map((r) => ({
      kind: r.kind,
      namespace: r.namespace,
      name: r.name,
      action: 'deleted' as const,
    }));
  }

  /**
   * Commits, turning a store-level conflict (another apply changed one of these objects after we
   * read it) into an answer about the user's document, without the store's internal key.
   */
  private async guardedTxn(ops: TxnOp[], conditions: TxnCondition[], documentOfKey: Map<string, number>) {
    try {
      return await this.store.txn(ops, conditions);
    } catch (e) {
      if (!isWeftError(e, 'WEFT_E_CONFLICT')) throw e;
      const key = /"(\/weft\/resources\/[^"]+)"/.exec(e.message)?.[1];
      const document = key === undefined ? undefined : documentOfKey.get(key);
      const what =
        key === undefined ? 'one of these objects' : key.slice(RESOURCE_PREFIX.length).replace(/\//, ' ');
      const message = `${what} was changed by another request while this one was being checked; nothing was stored: read it again and retry`;
      throw new WeftError(
        'WEFT_E_CONFLICT',
        message,
        document === undefined ? [] : [{ document, path: 'metadata.resourceVersion', message }],
      );
    }
  }

  /** Resolves a user-typed kind (`httproutes`, `hr`, `HTTPRoute`) or throws a 400 listing kinds. */
  kind(name: string): string {
    const found = findKind(name);
    if (!found) {
      const known = KINDS.map((k) => `${k.plural} (${[k.kind, ...k.shortNames].join(', ')})`).join('; ');
      throw new WeftError('WEFT_E_UNKNOWN_KIND', `unknown kind "${name}"; known kinds: ${known}`);
    }
    return found.kind;
  }
}

/** validateBatch words its warnings `document N: …`; the API carries N as a field. */
function documentWarning(text: string): Warning {
  const m = /^document (\d+): ([\s\S]*)$/.exec(text);
  return m ? { document: Number(m[1]), message: m[2]! } : { document: 0, message: text };
}

function summarize(errors: FieldError[]): string {
  const first = errors[0];
  if (!first) return 'invalid input';
  const where = first.document !== undefined ? `document ${first.document}: ` : '';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return `${where}${first.path}: ${first.message}${more}`;
}

/** Routes in the batch whose parent or backends no Service or workload provides (yet). */
function routeWarnings(batch: StoredObject[], all: StoredObject[]): Warning[] {
  const model = buildModel(modelInput(all));
  const known = new Set(model.services.map((s) => `${s.namespace}/${s.name}`));
  const warnings: Warning[] = [];
  batch.forEach((r, document) => {
    const single = buildModel(modelInput([r]));
    for (const binding of single.routes) {
      const refs = [
        { role: 'parent service', ns: binding.parent.namespace, name: binding.parent.name },
        ...binding.rules.flatMap((rule) =>
          rule.backends.map((b) => ({ role: 'backend', ns: b.namespace, name: b.name })),
        ),
      ];
      const seen = new Set<string>();
      for (const ref of refs) {
        const id = `${ref.ns}/${ref.name}`;
        if (known.has(id) || seen.has(id)) continue;
        seen.add(id);
        warnings.push({
          document,
          message: `${r.kind} ${r.metadata.namespace}/${r.metadata.name}: ${ref.role} ${id} does not exist yet (no Service and no workload labelled app: ${ref.name}); calls routed to it fail until it does`,
        });
      }
    }
  });
  return warnings;
}
