// The control plane's in-memory view of the stored resources, kept current by a store watch.
// Everything downstream (the compiler via the xDS config source, route warnings at apply time)
// reads from here, so one store watch feeds every proxy. Changes that arrive together are
// folded into one update per tick, so a batch apply causes one recompile, not one per object.

import { EventEmitter } from 'node:events';
import type { Store, WatchEvent, Watcher } from '../store/store.js';
import { buildModel, type ModelInput } from '../registry/build-model.js';
import type { MeshModel } from '../registry/model.js';
import type { Logger } from '../log.js';
import type { AnyResource } from '../resources/index.js';

export const RESOURCE_PREFIX = '/weft/resources/';

/** A stored resource as kept in memory: the parsed object plus its store bookkeeping. */
export interface StoredResource {
  key: string;
  kind: string;
  object: StoredObject;
  modRevision: number;
  /** Store lease the object is bound to (a sidecar's registration), 0 for none. */
  lease: number;
}

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
  };
  spec: unknown;
}

export function kindOfKey(key: string): string {
  return key.slice(RESOURCE_PREFIX.length).split('/')[0] ?? '';
}

export class MeshState extends EventEmitter {
  private readonly items = new Map<string, StoredResource>();
  private watcher: Watcher | undefined;
  private rev = 0;
  private cachedModel: MeshModel | undefined;
  private pendingEmit = false;

  private constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    super();
  }

  static async load(store: Store, log: Logger): Promise<MeshState> {
    const state = new MeshState(store, log);
    const { items, revision } = await store.list(RESOURCE_PREFIX);
    for (const kv of items) state.put(kv.key, kv.value, kv.modRevision, kv.lease);
    state.rev = revision;
    state.watcher = store.watch(RESOURCE_PREFIX, (events) => state.onEvents(events), {
      fromRevision: revision + 1,
    });
    return state;
  }

  /** The store revision this view reflects. */
  revision(): number {
    return this.rev;
  }

  all(kind?: string): StoredResource[] {
    const out = [...this.items.values()];
    return kind === undefined ? out : out.filter((r) => r.kind === kind);
  }

  get(key: string): StoredResource | undefined {
    return this.items.get(key);
  }

  /** The mesh model for the current resources (built once per change). */
  model(): MeshModel {
    this.cachedModel ??= buildModel(modelInput([...this.items.values()].map((r) => r.object)));
    return this.cachedModel;
  }

  close(): void {
    this.watcher?.cancel();
    this.watcher = undefined;
  }

  private put(key: string, value: string, modRevision: number, lease: number): void {
    try {
      const object = JSON.parse(value) as StoredObject;
      this.items.set(key, { key, kind: kindOfKey(key), object, modRevision, lease });
    } catch (e) {
      // Only the control plane writes here, after validation; an unreadable value is a bug or
      // a hand-edited store, and must not take the whole mesh down.
      this.log.error({ key, err: e }, 'stored resource is not valid JSON; ignoring it');
    }
  }

  private onEvents(events: WatchEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'put') {
        this.put(ev.kv.key, ev.kv.value, ev.kv.modRevision, ev.kv.lease);
        this.rev = Math.max(this.rev, ev.kv.modRevision);
      } else {
        this.items.delete(ev.key);
        this.rev = Math.max(this.rev, ev.revision);
      }
    }
    this.cachedModel = undefined;
    if (!this.pendingEmit) {
      this.pendingEmit = true;
      setImmediate(() => {
        this.pendingEmit = false;
        this.emit('change', this.rev);
      });
    }
  }
}

/** Sorts stored objects into the model builder's input by kind. */
export function modelInput(objects: readonly StoredObject[]): ModelInput {
  const input: ModelInput = {
    workloads: [],
    services: [],
    httpRoutes: [],
    grpcRoutes: [],
    trafficSplits: [],
    authorizationPolicies: [],
    trafficTargets: [],
    httpRouteGroups: [],
  };
  for (const o of objects as readonly AnyResource[]) {
    switch (o.kind) {
      case 'Workload':
        input.workloads.push(o);
        break;
      case 'Service':
        input.services.push(o);
        break;
      case 'HTTPRoute':
        input.httpRoutes.push(o);
        break;
      case 'GRPCRoute':
        input.grpcRoutes.push(o);
        break;
      case 'TrafficSplit':
        input.trafficSplits.push(o);
        break;
      case 'AuthorizationPolicy':
        input.authorizationPolicies!.push(o);
        break;
      case 'TrafficTarget':
        input.trafficTargets!.push(o);
        break;
      case 'HTTPRouteGroup':
        input.httpRouteGroups!.push(o);
        break;
      case 'MeshConfig':
        // Validation admits only weft-system/default, so there is at most one.
        input.meshConfig = o;
        break;
    }
  }
  return input;
}
