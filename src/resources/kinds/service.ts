// Service: the Kubernetes v1 shape. Selects workloads by labels and names the ports clients use;
// targetPort maps each one to a workload port (by number or by the workload port's name).
import { array, int, object, string, union } from '../../schema/schema.js';
import type { Infer, Report } from '../../schema/schema.js';
import { dns1035Label, dns1123Label, ianaServiceName, labelMap, portNumber } from '../formats.js';
import { reportDuplicates } from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const servicePortSchema = object({
  name: dns1123Label()
    .optional()
    .describe('Port name; required and unique when the Service has more than one port.'),
  port: portNumber().describe('Port clients connect to.'),
  targetPort: union(int({ min: 1, max: 65535 }), ianaServiceName())
    .optional()
    .describe('Workload port number or port name; defaults to port.'),
  protocol: string({ enum: ['TCP', 'UDP', 'SCTP'] })
    .default('TCP')
    .describe('Transport protocol; only TCP is proxied.'),
  appProtocol: string({
    minLength: 1,
    maxLength: 316,
    format: {
      description: 'an IANA service name or a domain-prefixed name such as "kubernetes.io/h2c"',
      test: /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
    },
  })
    .optional()
    .describe('Application protocol hint: http, http2, grpc, kubernetes.io/h2c, …'),
});

function checkServicePorts(ports: Infer<typeof servicePortSchema>[], report: Report): void {
  if (ports.length > 1) {
    ports.forEach((p, i) => {
      if (p.name === undefined) report(`[${i}].name`, 'required when the Service has more than one port');
    });
  }
  reportDuplicates(
    ports.map((p) => p.name),
    report,
    'name',
    'port name',
  );
  reportDuplicates(
    ports.map((p) => `${p.port}/${p.protocol}`),
    report,
    'port',
    'port',
  );
}

export const serviceSpecSchema = object({
  selector: labelMap()
    .default({})
    .describe('Labels a workload must all carry to back this Service; empty selects nothing.'),
  ports: array(servicePortSchema, { minItems: 1, maxItems: 64 })
    .refine(checkServicePorts)
    .describe('Ports of the Service (at least 1).'),
});

export const serviceSchema = documentSchema('Service', 'v1', dns1035Label(), serviceSpecSchema).transform(
  (service) => {
    // Kubernetes defaults targetPort to port; filling it here spares every consumer the rule.
    for (const p of service.spec.ports) p.targetPort ??= p.port;
    return service;
  },
);
export type Service = Infer<typeof serviceSchema>;

export const serviceKind = defineKind({
  kind: 'Service',
  apiVersion: 'v1',
  apiVersions: ['v1'],
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  namespaced: true,
  description: 'A named set of workloads (by label selector) and the ports clients reach them on.',
  schema: serviceSchema,
  warnings: (s) => {
    const name = `Service ${s.metadata.namespace}/${s.metadata.name}`;
    const warnings: string[] = [];
    if (Object.keys(s.spec.selector).length === 0)
      warnings.push(`${name} has an empty selector and selects no workloads`);
    s.spec.ports.forEach((p, i) => {
      if (p.protocol !== 'TCP')
        warnings.push(`${name} spec.ports[${i}] uses ${p.protocol}, which the mesh does not proxy`);
    });
    return warnings;
  },
});
