// Feeds the ADS server from the mesh state: compiles once per (store revision, node class) and
// hands every proxy of that class the same objects. A resource that compiles to the same content
// as before keeps its previous object identity, so the ADS server's per-object encoding cache
// hits and unchanged resources are neither re-encoded nor re-sent.

import { compile, type NodeView } from '../compiler/compile.js';
import type { NodeInfo, ResourceSet } from '../xds/types.js';
import type { MeshState } from './mesh-state.js';

interface CompiledClass {
  revision: number;
  resources: ResourceSet;
  /** Serialized form of each resource object, to recognise unchanged ones next time. */
  text: WeakMap<object, string>;
}

/**
 * What the compiler needs to know of a node: its namespace (Istio's NAMESPACE metadata key,
 * else `default`) and whether it is a proxyless gRPC client (our bootstrap's WEFT_PROXY_TYPE,
 * else gRPC's own user agent name, "gRPC …").
 */
export function nodeView(node: NodeInfo): NodeView {
  const ns = node.metadata.NAMESPACE;
  const type = node.metadata.WEFT_PROXY_TYPE;
  const proxyless =
    typeof type === 'string' ? type === 'proxyless-grpc' : node.userAgentName.startsWith('gRPC');
  return { namespace: typeof ns === 'string' && ns !== '' ? ns : 'default', proxyless };
}

export class MeshXdsSource {
  private readonly classes = new Map<string, CompiledClass>();

  constructor(private readonly state: MeshState) {}

  resourcesFor(node: NodeInfo): { version: string; resources: ResourceSet } {
    const view = nodeView(node);
    const classKey = `${view.namespace}|${view.proxyless ? 'proxyless' : 'proxy'}`;
    const revision = this.state.revision();
    const prev = this.classes.get(classKey);
    if (prev && prev.revision === revision) return { version: String(revision), resources: prev.resources };

    const fresh = compile(this.state.model(), view);
    const text = new WeakMap<object, string>();
    for (const [type, byName] of fresh) {
      const old = prev?.resources.get(type);
      for (const [name, obj] of byName) {
        const s = JSON.stringify(obj);
        const before = old?.get(name);
        if (before && prev?.text.get(before) === s) {
          byName.set(name, before);
          text.set(before, s);
        } else {
          text.set(obj, s);
        }
      }
    }
    this.classes.set(classKey, { revision, resources: fresh, text });
    return { version: String(revision), resources: fresh };
  }

  onChange(listener: () => void): () => void {
    this.state.on('change', listener);
    return () => this.state.off('change', listener);
  }
}
