// SMI TrafficTarget (access.smi-spec.io/v1alpha3): which service accounts may call the
// workloads running as a destination service account, on which HTTPRouteGroup routes. Each
// TrafficTarget is an ALLOW policy for the destination's workloads: once one targets a service
// account, traffic no TrafficTarget (or ALLOW AuthorizationPolicy) allows is denied, as SMI
// specifies. Only HTTPRouteGroup rules are supported (no TCPRoute or UDPRoute).
import { array, object, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1123Label, dns1123Subdomain } from '../formats.js';
import { defineKind, documentSchema } from '../kind.js';

export const TRAFFIC_TARGET_API_VERSION = 'access.smi-spec.io/v1alpha3';

const identity = () =>
  object({
    kind: string({ enum: ['ServiceAccount'] as const }).describe('Only ServiceAccount.'),
    name: dns1123Subdomain().describe('Service account name.'),
    namespace: dns1123Label().optional().describe("Namespace; the TrafficTarget's when absent."),
  });

export const trafficTargetSpecSchema = object({
  destination: identity().describe('The service account whose workloads enforce this target.'),
  sources: array(identity(), { minItems: 1, maxItems: 64 }).describe(
    'Service accounts allowed to call (verified by mutual TLS).',
  ),
  rules: array(
    object({
      kind: string({ enum: ['HTTPRouteGroup'] as const }).describe('Only HTTPRouteGroup.'),
      name: dns1123Subdomain().describe("HTTPRouteGroup in the TrafficTarget's namespace."),
      matches: array(string({ minLength: 1, maxLength: 253 }), { minItems: 1, maxItems: 64 })
        .optional()
        .describe("Names of the group's matches allowed; absent: all of them."),
    }),
    { minItems: 1, maxItems: 64 },
  ).describe('Routes the sources may use (any of them).'),
});

export const trafficTargetSchema = documentSchema(
  'TrafficTarget',
  TRAFFIC_TARGET_API_VERSION,
  dns1123Subdomain(),
  trafficTargetSpecSchema,
);
export type TrafficTarget = Infer<typeof trafficTargetSchema>;

export const trafficTargetKind = defineKind({
  kind: 'TrafficTarget',
  apiVersion: TRAFFIC_TARGET_API_VERSION,
  apiVersions: [TRAFFIC_TARGET_API_VERSION],
  plural: 'traffictargets',
  singular: 'traffictarget',
  shortNames: ['tt'],
  namespaced: true,
  description:
    'SMI access control: which service accounts may call which routes of a destination service account.',
  schema: trafficTargetSchema,
});
