// Workload: one running instance (process, VM, container) that can receive mesh traffic. Sidecars
// register their own; instances without a sidecar are registered by hand. Services select
// workloads by metadata.labels.
import { array, object, string } from '../../schema/schema.js';
import type { Infer, Report } from '../../schema/schema.js';
import { address, dns1123Label, dns1123Subdomain, isDns1035Label, portNumber } from '../formats.js';
import { reportDuplicates } from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const WORKLOAD_PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'TCP'] as const;

export const workloadPortSchema = object({
  name: dns1123Label()
    .optional()
    .describe('Port name, unique within the workload; Service targetPort can refer to it.'),
  port: portNumber().describe('Port number the instance listens on.'),
  protocol: string({ enum: WORKLOAD_PROTOCOLS })
    .default('HTTP')
    .describe('Application protocol; decides how the proxy handles the traffic.'),
});

export function checkWorkloadPorts(ports: Infer<typeof workloadPortSchema>[], report: Report): void {
  reportDuplicates(
    ports.map((p) => String(p.port)),
    report,
    'port',
    'port',
  );
  reportDuplicates(
    ports.map((p) => p.name),
    report,
    'name',
    'port name',
  );
}

export const workloadSpecSchema = object({
  address: address().describe('Where mesh traffic for this instance goes: IPv4/IPv6 address or hostname.'),
  ports: array(workloadPortSchema, { maxItems: 64 })
    .refine(checkWorkloadPorts)
    .default([])
    .describe('Ports the instance serves; numbers and names unique.'),
  serviceAccount: dns1123Subdomain()
    .default('default')
    .describe('Identity of the instance (SPIFFE .../sa/<serviceAccount>).'),
});

export const workloadSchema = documentSchema(
  'Workload',
  'weft.dev/v1alpha1',
  dns1123Subdomain(),
  workloadSpecSchema,
);
export type Workload = Infer<typeof workloadSchema>;

export const workloadKind = defineKind({
  kind: 'Workload',
  apiVersion: 'weft.dev/v1alpha1',
  apiVersions: ['weft.dev/v1alpha1'],
  plural: 'workloads',
  singular: 'workload',
  shortNames: ['wl'],
  namespaced: true,
  description: 'One instance of an application: where it is reached, its ports and its identity.',
  schema: workloadSchema,
  warnings: (w) => {
    const app = w.metadata.labels?.['app'];
    const id = `Workload ${w.metadata.namespace}/${w.metadata.name}`;
    if (app === undefined) return [`${id} has no "app" label, so it belongs to no implicit service`];
    if (!isDns1035Label(app)) {
      return [
        `${id}: label app: "${app}" is not a valid service name (a DNS-1035 label: lowercase letters, digits and "-", starting with a letter), so it makes no implicit service; select it with an explicit Service`,
      ];
    }
    return [];
  },
});
