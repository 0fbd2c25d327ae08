// GRPCRoute (Gateway API v1) in its mesh (GAMMA) form: routes gRPC calls to the parent Services by
// fully qualified service and method name and by metadata (headers).
import { array, object, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1123Subdomain } from '../formats.js';
import {
  GATEWAY_API_GROUP,
  backendRefs,
  checkFilterFields,
  checkFilterList,
  checkRegex,
  headerMatches,
  headerModifier,
  hostname,
  parentRefs,
  reportDuplicates,
  requestMirror,
  sectionName,
} from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

const GRPC_SERVICE = /^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export const grpcMethodMatchSchema = object({
  type: string({ enum: ['Exact', 'RegularExpression'] })
    .default('Exact')
    .describe('How service and method are compared.'),
  service: string({ maxLength: 1024 })
    .optional()
    .describe('Fully qualified service, e.g. "helloworld.Greeter".'),
  method: string({ maxLength: 1024 }).optional().describe('Method name, e.g. "SayHello".'),
}).refine((match, report) => {
  if (match.service === undefined && match.method === undefined) {
    report('', 'must set service, method or both');
    return;
  }
  for (const [field, value, pattern, what] of [
    [
      'service',
      match.service,
      GRPC_SERVICE,
      'a fully qualified gRPC service name such as "helloworld.Greeter"',
    ],
    [
      'method',
      match.method,
      GRPC_METHOD,
      'a gRPC method name (letters, digits and "_", not starting with a digit)',
    ],
  ] as const) {
    if (value === undefined) continue;
    if (match.type === 'RegularExpression') checkRegex(value, field, report);
    else if (!pattern.test(value))
      report(field, `must be ${what} when type is Exact, got ${JSON.stringify(value)}`);
  }
});

export const grpcRouteMatchSchema = object({
  method: grpcMethodMatchSchema.optional().describe('Service/method match; any method when absent.'),
  headers: headerMatches(4096),
});

const GRPC_FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
} as const;

const grpcFilterSchema = object({
  type: string({ enum: Object.keys(GRPC_FILTER_FIELDS) as (keyof typeof GRPC_FILTER_FIELDS)[] }).describe(
    'Filter type; its matching field below must be set.',
  ),
  requestHeaderModifier: headerModifier().optional(),
  responseHeaderModifier: headerModifier().optional(),
  requestMirror: requestMirror().optional(),
}).refine(checkFilterFields);

export const grpcRouteRuleSchema = object({
  name: sectionName().optional().describe('Rule name, unique within the route.'),
  matches: array(grpcRouteMatchSchema, { maxItems: 64 })
    .optional()
    .describe('A call matching any of these uses this rule (at most 64); every call when absent.'),
  filters: array(grpcFilterSchema, { maxItems: 16 })
    .refine((filters, report) =>
      checkFilterList(
        filters.map((f) => f.type),
        report,
      ),
    )
    .optional()
    .describe('RequestHeaderModifier, ResponseHeaderModifier, RequestMirror.'),
  backendRefs: backendRefs(),
});

export const grpcRouteSpecSchema = object({
  parentRefs: parentRefs(),
  hostnames: array(hostname(), { maxItems: 16 })
    .optional()
    .describe('Accepted for compatibility; mesh routes match by parent Service, so hostnames are ignored.'),
  rules: array(grpcRouteRuleSchema, { maxItems: 16 })
    .refine((rules, report) =>
      reportDuplicates(
        rules.map((r) => r.name),
        report,
        'name',
        'rule name',
      ),
    )
    .default([{}])
    .describe('At most 16; default: one rule matching every call.'),
});

export const GRPC_ROUTE_API_VERSION = `${GATEWAY_API_GROUP}/v1`;

export const grpcRouteSchema = documentSchema(
  'GRPCRoute',
  GRPC_ROUTE_API_VERSION,
  dns1123Subdomain(),
  grpcRouteSpecSchema,
);
export type GRPCRoute = Infer<typeof grpcRouteSchema>;
export type GRPCRouteRule = Infer<typeof grpcRouteRuleSchema>;

export const grpcRouteKind = defineKind({
  kind: 'GRPCRoute',
  apiVersion: GRPC_ROUTE_API_VERSION,
  apiVersions: [GRPC_ROUTE_API_VERSION],
  plural: 'grpcroutes',
  singular: 'grpcroute',
  shortNames: ['gr'],
  namespaced: true,
  description: 'Gateway API gRPC routing for calls to the parent Services (mesh/GAMMA form).',
  schema: grpcRouteSchema,
  warnings: (route) =>
    route.spec.hostnames !== undefined
      ? [
          `GRPCRoute ${route.metadata.namespace}/${route.metadata.name}: spec.hostnames is ignored for Service parents`,
        ]
      : [],
});
