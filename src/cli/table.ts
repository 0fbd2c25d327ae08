// kubectl-like tables for `weft get`: NAME first, a few columns that matter for each kind, AGE.

export interface ListedObject {
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    creationTimestamp?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
  spec: Record<string, unknown>;
}

type Column = [string, (o: ListedObject) => string];

function list(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
}

const ROUTE_COLUMNS: Column[] = [
  [
    'PARENTS',
    (o) =>
      list(o.spec.parentRefs)
        .map((p) => String(p.name))
        .join(','),
  ],
  ['RULES', (o) => String(list(o.spec.rules).length)],
];

const KIND_COLUMNS: Record<string, Column[]> = {
  Workload: [
    ['ADDRESS', (o) => String(o.spec.address ?? '')],
    [
      'PORTS',
      (o) =>
        list(o.spec.ports)
          .map((p) => `${String(p.port)}/${String(p.protocol)}`)
          .join(','),
    ],
    ['APP', (o) => o.metadata.labels?.app ?? ''],
    ['VERSION', (o) => o.metadata.labels?.version ?? ''],
  ],
  Service: [
    [
      'SELECTOR',
      (o) =>
        Object.entries((o.spec.selector as Record<string, string> | undefined) ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    ],
    [
      'PORTS',
      (o) =>
        list(o.spec.ports)
          .map((p) => String(p.port))
          .join(','),
    ],
  ],
  HTTPRoute: ROUTE_COLUMNS,
  GRPCRoute: ROUTE_COLUMNS,
  TrafficSplit: [
    ['SERVICE', (o) => String(o.spec.service ?? '')],
    [
      'BACKENDS',
      (o) =>
        list(o.spec.backends)
          .map((b) => `${String(b.service)}=${String(b.weight)}`)
          .join(','),
    ],
  ],
  MeshConfig: [['MTLS', (o) => String((o.spec.mtls as { mode?: string } | undefined)?.mode ?? '')]],
};

export function age(created: string | undefined, now = Date.now()): string {
  if (!created) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function formatTable(items: ListedObject[], withNamespace: boolean): string {
  const kind = items[0]?.kind ?? '';
  const columns: Column[] = [
    ...(withNamespace ? [['NAMESPACE', (o: ListedObject) => o.metadata.namespace] as Column] : []),
    ['NAME', (o) => o.metadata.name],
    ...(KIND_COLUMNS[kind] ?? []),
    ['AGE', (o) => age(o.metadata.creationTimestamp)],
  ];
  const rows = items.map((o) => columns.map(([, f]) => f(o)));
  const header = columns.map(([h]) => h);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return (
    [header, ...rows]
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
