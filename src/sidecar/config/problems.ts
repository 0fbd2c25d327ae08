// What the translator reports when it refuses an update: one problem per violation, each naming
// the resource and the field path, so the NACK the control plane records says exactly what to
// change. Problems are collected, never thrown, so one NACK lists them all.

/** The Envoy resource kinds the sidecar consumes, as Envoy names them in messages. */
export type ResourceKind = 'Listener' | 'RouteConfiguration' | 'Cluster' | 'ClusterLoadAssignment' | 'Secret';

export interface ConfigProblem {
  kind: ResourceKind;
  /** Resource name (cluster_name for a ClusterLoadAssignment). */
  resource: string;
  /** Field path inside the resource, e.g. `filter_chains[0].filters[0].typed_config.rds`; '' for the whole resource. */
  path: string;
  /** Completes the path: `… is not supported by the Weft sidecar`, `…: must be > 0`. */
  message: string;
}

/** `Listener "outbound": filter_chains[0].… is not supported by the Weft sidecar`. */
export function formatProblem(p: ConfigProblem): string {
  const where = `${p.kind} ${JSON.stringify(p.resource)}: `;
  if (p.path === '') return where + p.message;
  // Messages that read on from the path ("is not supported …") follow it with a space.
  return where + p.path + (p.message.startsWith('is ') ? ' ' : ': ') + p.message;
}

/** Envoy's NACKs list problems one per line; a cap keeps one bad push from flooding the stream. */
export function nackMessage(problems: readonly ConfigProblem[], max = 50): string {
  const lines = problems.slice(0, max).map(formatProblem);
  if (problems.length > max) lines.push(`… and ${problems.length - max} more`);
  return lines.join('\n');
}

/** Collects problems for one resource; field paths are joined by the callers. */
export class ProblemSink {
  constructor(
    readonly kind: ResourceKind,
    readonly resource: string,
    private readonly out: ConfigProblem[],
  ) {}

  add(path: string, message: string): void {
    this.out.push({ kind: this.kind, resource: this.resource, path, message });
  }

  /** How many problems all sinks sharing the output have collected so far. */
  get count(): number {
    return this.out.length;
  }
}

/** `a` + `.b` / `[0]` path joining that leaves no leading dot. */
export function at(path: string, field: string | number): string {
  if (typeof field === 'number') return `${path}[${field}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) return path === '' ? field : `${path}.${field}`;
  return `${path}[${JSON.stringify(field)}]`;
}
