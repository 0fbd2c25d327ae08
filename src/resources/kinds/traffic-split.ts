// TrafficSplit (SMI, archived spec): splits traffic for a root Service across backend Services by
// weight. Kept as an import path for existing SMI configs; HTTPRoute is the preferred form.
import { array, int, object, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1035Label, dns1123Subdomain } from '../formats.js';
import { reportDuplicates } from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const TRAFFIC_SPLIT_API_VERSION = 'split.smi-spec.io/v1alpha4';

export const trafficSplitSpecSchema = object({
  service: dns1035Label().describe('Root Service whose traffic is split (clients address this one).'),
  backends: array(
    object({
      service: dns1035Label().describe('Backend Service.'),
      // Bounded like HTTPRoute's: 64 × 1,000,000 stays far below the uint32 sum Envoy and gRPC
      // accept, so no valid split can compile to a route the proxies reject.
      weight: int({ min: 0, max: 1_000_000 }).describe('Relative share; 0 sends none.'),
    }),
    { minItems: 1, maxItems: 64 },
  )
    .refine((backends, report) =>
      reportDuplicates(
        backends.map((b) => b.service),
        report,
        'service',
        'backend',
      ),
    )
    .describe('Backends and their weights (at least 1).'),
  // HTTPRouteGroup arrives in a later release; until then a split restricted by matches would
  // silently apply to all traffic, so any entry is rejected.
  matches: array(object({ kind: string(), name: string(), apiGroup: string().optional() }))
    .refine((matches, report) => {
      if (matches.length > 0)
        report('', 'matches on HTTPRouteGroup are not supported yet; remove spec.matches');
    })
    .optional()
    .describe('Not supported yet: must be absent or empty.'),
});

export const trafficSplitSchema = documentSchema(
  'TrafficSplit',
  TRAFFIC_SPLIT_API_VERSION,
  dns1123Subdomain(),
  trafficSplitSpecSchema,
);
export type TrafficSplit = Infer<typeof trafficSplitSchema>;

export const trafficSplitKind = defineKind({
  kind: 'TrafficSplit',
  apiVersion: TRAFFIC_SPLIT_API_VERSION,
  // v1alpha2 and v1alpha3 have the same backends shape (integer weights); v1alpha3 added matches.
  apiVersions: [TRAFFIC_SPLIT_API_VERSION, 'split.smi-spec.io/v1alpha3', 'split.smi-spec.io/v1alpha2'],
  plural: 'trafficsplits',
  singular: 'trafficsplit',
  shortNames: ['ts'],
  namespaced: true,
  description: 'SMI weighted split of a root Service across backend Services.',
  schema: trafficSplitSchema,
  warnings: (split) =>
    split.spec.backends.every((b) => b.weight === 0)
      ? [
          `TrafficSplit ${split.metadata.namespace}/${split.metadata.name}: every backend has weight 0, so no traffic flows`,
        ]
      : [],
});
