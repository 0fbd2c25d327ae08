// SMI HTTPRouteGroup (specs.smi-spec.io/v1alpha4): named HTTP request matches (method, path
// regex, headers) that TrafficTargets refer to. On its own it routes and allows nothing.
import { array, object, record, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1123Subdomain } from '../formats.js';
import { checkRegex, headerName, reportDuplicates } from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const HTTP_ROUTE_GROUP_API_VERSION = 'specs.smi-spec.io/v1alpha4';

const method = () =>
  string({
    minLength: 1,
    maxLength: 32,
    format: { description: 'an upper-case HTTP method token, or "*" for any', test: /^(\*|[A-Z][A-Z_-]*)$/ },
  });

export const httpRouteGroupSpecSchema = object({
  matches: array(
    object({
      name: string({ minLength: 1, maxLength: 253 }).describe('Name TrafficTarget rules refer to.'),
      methods: array(method(), { minItems: 1, maxItems: 32 })
        .optional()
        .describe('Request methods (any of them); absent or "*": any.'),
      pathRegex: string({ minLength: 1, maxLength: 1024 })
        .refine((p, report) => checkRegex(p, '', report))
        .optional()
        .describe('RE2 pattern the whole path (query excluded) must match; absent: any path.'),
      headers: record(string({ maxLength: 4096 }), { key: headerName() })
        .optional()
        .describe('Headers that must all have exactly these values.'),
    }),
    { minItems: 1, maxItems: 64 },
  )
    .refine((matches, report) =>
      reportDuplicates(
        matches.map((m) => m.name),
        report,
        'name',
        'match',
      ),
    )
    .describe('Named request matches (names unique).'),
});

export const httpRouteGroupSchema = documentSchema(
  'HTTPRouteGroup',
  HTTP_ROUTE_GROUP_API_VERSION,
  dns1123Subdomain(),
  httpRouteGroupSpecSchema,
);
export type HTTPRouteGroup = Infer<typeof httpRouteGroupSchema>;

export const httpRouteGroupKind = defineKind({
  kind: 'HTTPRouteGroup',
  apiVersion: HTTP_ROUTE_GROUP_API_VERSION,
  apiVersions: [HTTP_ROUTE_GROUP_API_VERSION],
  plural: 'httproutegroups',
  singular: 'httproutegroup',
  shortNames: ['hrg'],
  namespaced: true,
  description: 'SMI named HTTP request matches for TrafficTarget rules.',
  schema: httpRouteGroupSchema,
});
