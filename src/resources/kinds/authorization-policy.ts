// AuthorizationPolicy (Weft's own, shaped like Istio's): which callers may use a Service. Rules
// match source identities (SPIFFE IDs, exact or by prefix), their namespaces, and the request's
// method, path and headers. DENY policies win over ALLOW ones; once any ALLOW policy targets a
// Service, a request no ALLOW rule matches is denied. The sidecar in front of each of the
// Service's workloads enforces them (compiled to Envoy's RBAC filters).
import { array, object, string } from '../../schema/schema.js';
import type { Infer, Report } from '../../schema/schema.js';
import { dns1035Label, dns1123Label, dns1123Subdomain } from '../formats.js';
import { headerName } from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const AUTHORIZATION_POLICY_API_VERSION = 'weft.dev/v1alpha1';

// A SPIFFE ID (`spiffe://<trust-domain>/<path>`), or a prefix of one ending in `*`, or `*` (any
// verified identity). The `*` may only end the value: principals compile to exact or prefix
// matches, never patterns.
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~%!$&'()+,;=:@-]+)*\/?$/;
export function isPrincipalPattern(s: string): boolean {
  if (s === '*') return true;
  if (s.endsWith('*')) return s.startsWith('spiffe://') && !s.slice(0, -1).includes('*');
  return SPIFFE_ID.test(s);
}

const principal = () =>
  string({
    minLength: 1,
    maxLength: 2048,
    format: {
      description:
        'a SPIFFE ID (spiffe://<trust-domain>/<path>), a prefix of one ending in "*", or "*" for any verified identity',
      test: isPrincipalPattern,
    },
  });

/** `/exact`, `/prefix/*` (any path starting with `/prefix/`), or `*` (any path), as in Istio. */
export function isPathPattern(s: string): boolean {
  if (s === '*') return true;
  const body = s.endsWith('*') ? s.slice(0, -1) : s;
  return s.startsWith('/') && !body.includes('*') && !/[\s?#]/.test(s);
}

const pathPattern = () =>
  string({
    minLength: 1,
    maxLength: 1024,
    format: {
      description:
        'a path starting with "/" (exact), or ending in "*" (prefix, e.g. "/api/*"), or "*" (any); no query, fragment or whitespace',
      test: isPathPattern,
    },
  });

const method = () =>
  string({
    minLength: 1,
    maxLength: 32,
    format: { description: 'an upper-case HTTP method token such as GET or POST', test: /^[A-Z][A-Z_-]*$/ },
  });

function atLeastOneField(fields: readonly string[], what: string) {
  return (value: Record<string, unknown>, report: Report): void => {
    if (fields.every((f) => value[f] === undefined))
      report('', `${what} must set at least one of ${fields.join(', ')}`);
  };
}

const source = object({
  principals: array(principal(), { minItems: 1, maxItems: 64 })
    .optional()
    .describe('Verified caller identities (any of them): SPIFFE IDs, prefixes ending in "*", or "*".'),
  notPrincipals: array(principal(), { minItems: 1, maxItems: 64 })
    .optional()
    .describe('Caller identities that do not match (none of them).'),
  namespaces: array(dns1123Label(), { minItems: 1, maxItems: 64 })
    .optional()
    .describe("Namespaces of the caller's verified identity (any of them)."),
}).refine(atLeastOneField(['principals', 'notPrincipals', 'namespaces'], 'a from entry'));

const header = object({
  name: headerName().describe('Header name; compared case-insensitively.'),
  value: string({ maxLength: 4096 }).optional().describe('Exact value.'),
  prefix: string({ minLength: 1, maxLength: 4096 }).optional().describe('Value prefix.'),
}).refine((h, report) => {
  if (h.value !== undefined && h.prefix !== undefined) report('', 'set value or prefix, not both');
});

const operation = object({
  methods: array(method(), { minItems: 1, maxItems: 32 })
    .optional()
    .describe('Request methods (any of them).'),
  paths: array(pathPattern(), { minItems: 1, maxItems: 64 })
    .optional()
    .describe('Request paths (any of them), query excluded: exact, "/prefix/*" or "*".'),
  notPaths: array(pathPattern(), { minItems: 1, maxItems: 64 })
    .optional()
    .describe('Request paths that do not match (none of them).'),
  headers: array(header, { minItems: 1, maxItems: 16 })
    .optional()
    .describe('Request headers (all of them); neither value nor prefix: the header is present.'),
}).refine(atLeastOneField(['methods', 'paths', 'notPaths', 'headers'], 'a to entry'));

export const authorizationPolicySpecSchema = object({
  targetRef: object({
    kind: string({ enum: ['Service'] as const }).describe('Only Service.'),
    name: dns1035Label().describe("Service in the policy's namespace."),
  }).describe('The Service whose workloads enforce the policy.'),
  action: string({ enum: ['ALLOW', 'DENY'] as const })
    .default('ALLOW')
    .describe(
      'ALLOW: requests a rule matches are allowed (and, once any ALLOW policy targets the Service, all others denied); DENY: requests a rule matches are denied, whatever ALLOW says.',
    ),
  rules: array(
    object({
      from: array(source, { minItems: 1, maxItems: 64 })
        .optional()
        .describe('Callers (any entry); absent: any caller, verified or not.'),
      to: array(operation, { minItems: 1, maxItems: 64 })
        .optional()
        .describe('Requests (any entry); absent: any request.'),
    }),
    { maxItems: 64 },
  )
    .default([])
    .describe(
      'A request matches the policy when it matches one rule; none: ALLOW allows nothing, DENY denies nothing.',
    ),
});

export const authorizationPolicySchema = documentSchema(
  'AuthorizationPolicy',
  AUTHORIZATION_POLICY_API_VERSION,
  dns1123Subdomain(),
  authorizationPolicySpecSchema,
);
export type AuthorizationPolicy = Infer<typeof authorizationPolicySchema>;

export const authorizationPolicyKind = defineKind({
  kind: 'AuthorizationPolicy',
  apiVersion: AUTHORIZATION_POLICY_API_VERSION,
  apiVersions: [AUTHORIZATION_POLICY_API_VERSION],
  plural: 'authorizationpolicies',
  singular: 'authorizationpolicy',
  shortNames: ['ap'],
  namespaced: true,
  description:
    'Which callers (identity, namespace) may make which requests (method, path, headers) to a Service.',
  schema: authorizationPolicySchema,
  warnings: (p) =>
    p.spec.action === 'ALLOW' && p.spec.rules.length === 0
      ? [
          `AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}: ALLOW with no rules denies every request to Service ${p.spec.targetRef.name}`,
        ]
      : [],
});
