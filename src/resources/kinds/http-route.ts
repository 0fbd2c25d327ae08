// HTTPRoute (Gateway API v1) in its mesh (GAMMA) form: attached to Services through parentRefs,
// it decides how requests to those Services are matched, modified and split across backends.
// Rules follow the v1 CRD's schema and CEL validations, restricted to filters we can compile.
import { array, int, object, string } from '../../schema/schema.js';
import type { Infer, Report } from '../../schema/schema.js';
import { dns1123Subdomain } from '../formats.js';
import {
  FILTER_FIELDS,
  GATEWAY_API_GROUP,
  backendRefs,
  checkFilterFields,
  checkFilterList,
  checkRegex,
  duration,
  durationMs,
  headerMatches,
  headerModifier,
  headerName,
  hostname,
  parentRefs,
  pathModifier,
  preciseHostname,
  reportDuplicates,
  requestMirror,
  sectionName,
} from '../gateway-api.js';
import { defineKind, documentSchema } from '../kind.js';

export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
] as const;

const PATH_CHARACTERS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

/** The Gateway API's CEL rules for a literal path, as one readable list. */
export function literalPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path starting with "/"';
  if (!PATH_CHARACTERS.test(path)) {
    return `must contain only URL path characters (letters, digits, -._~!$&'()*+,;=:@/ and %XX escapes)`;
  }
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#']) {
    if (path.includes(bad)) return `must not contain "${bad}"`;
  }
  for (const bad of ['/..', '/.']) if (path.endsWith(bad)) return `must not end with "${bad}"`;
  return undefined;
}

export const pathMatchSchema = object({
  type: string({ enum: ['Exact', 'PathPrefix', 'RegularExpression'] })
    .default('PathPrefix')
    .describe('Exact, PathPrefix (whole segments) or RegularExpression (RE2).'),
  value: string({ maxLength: 1024 }).default('/').describe('The path, prefix or pattern.'),
}).refine((match, report) => {
  if (match.type === 'RegularExpression') {
    checkRegex(match.value, 'value', report);
    return;
  }
  const problem = literalPathProblem(match.value);
  if (problem) report('value', `${problem} when type is ${match.type}, got ${JSON.stringify(match.value)}`);
});

const queryParamMatch = object({
  type: string({ enum: ['Exact', 'RegularExpression'] }).default('Exact'),
  name: headerName().describe('Query parameter name; compared case-sensitively.'),
  value: string({ minLength: 1, maxLength: 1024 }),
}).refine((match, report) => {
  if (match.type === 'RegularExpression') checkRegex(match.value, 'value', report);
});

export const httpRouteMatchSchema = object({
  path: pathMatchSchema
    .default({ type: 'PathPrefix', value: '/' })
    .describe('Path match; default: prefix "/".'),
  headers: headerMatches(4096),
  queryParams: array(queryParamMatch, { maxItems: 16 })
    .refine((params, report) =>
      reportDuplicates(
        params.map((p) => p.name),
        report,
        'name',
        'query parameter',
      ),
    )
    .optional()
    .describe('All must match (at most 16, names unique).'),
  method: string({ enum: HTTP_METHODS }).optional().describe('HTTP method to match.'),
});

const httpFilterSchema = object({
  type: string({ enum: Object.keys(FILTER_FIELDS) as (keyof typeof FILTER_FIELDS)[] }).describe(
    'Filter type; its matching field below must be set.',
  ),
  requestHeaderModifier: headerModifier().optional(),
  responseHeaderModifier: headerModifier().optional(),
  requestMirror: requestMirror().optional(),
  requestRedirect: object({
    scheme: string({ enum: ['http', 'https'] }).optional(),
    hostname: preciseHostname().optional(),
    path: pathModifier().optional(),
    port: int({ min: 1, max: 65535 }).optional(),
    statusCode: int({ min: 301, max: 302 }).default(302).describe('301 or 302.'),
  }).optional(),
  urlRewrite: object({
    hostname: preciseHostname().optional(),
    path: pathModifier().optional(),
  }).optional(),
}).refine(checkFilterFields);

type HTTPRouteRuleInput = Infer<typeof httpRouteRuleShape>;

// replacePrefixMatch rewrites "the matched prefix", which is only defined for one PathPrefix match.
function checkRule(rule: HTTPRouteRuleInput, report: Report): void {
  rule.filters?.forEach((filter, i) => {
    const modifier = filter.requestRedirect?.path ?? filter.urlRewrite?.path;
    if (modifier?.type !== 'ReplacePrefixMatch') return;
    const onlyMatch = rule.matches.length === 1 ? rule.matches[0] : undefined;
    if (onlyMatch?.path.type !== 'PathPrefix') {
      report(
        `filters[${i}]`,
        `${filter.type} with path.type ReplacePrefixMatch needs exactly one match, of type PathPrefix`,
      );
    }
  });
  const timeouts = rule.timeouts;
  if (timeouts?.request !== undefined && timeouts.backendRequest !== undefined) {
    const request = durationMs(timeouts.request);
    if (request !== 0 && durationMs(timeouts.backendRequest) > request) {
      report('timeouts.backendRequest', `must not be longer than timeouts.request (${timeouts.request})`);
    }
  }
}

const httpRouteRuleShape = object({
  name: sectionName().optional().describe('Rule name, unique within the route.'),
  matches: array(httpRouteMatchSchema, { maxItems: 64 })
    .default([{ path: { type: 'PathPrefix', value: '/' } }])
    .describe('A request matching any of these uses this rule (at most 64); default: path prefix "/".'),
  filters: array(httpFilterSchema, { maxItems: 16 })
    .refine((filters, report) =>
      checkFilterList(
        filters.map((f) => f.type),
        report,
      ),
    )
    .optional()
    .describe('RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite.'),
  backendRefs: backendRefs(),
  timeouts: object({
    request: duration().optional().describe('Whole request, including retries; "0s" disables.'),
    backendRequest: duration().optional().describe('One attempt to a backend; at most request.'),
  })
    .optional()
    .describe('Gateway API durations such as "10s" or "1m30s".'),
});

export const httpRouteRuleSchema = httpRouteRuleShape.refine(checkRule);

export const httpRouteSpecSchema = object({
  parentRefs: parentRefs(),
  hostnames: array(hostname(), { maxItems: 16 })
    .optional()
    .describe('Accepted for compatibility; mesh routes match by parent Service, so hostnames are ignored.'),
  rules: array(httpRouteRuleSchema, { maxItems: 16 })
    .refine((rules, report) =>
      reportDuplicates(
        rules.map((r) => r.name),
        report,
        'name',
        'rule name',
      ),
    )
    .default([{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }])
    .describe('At most 16; default: one rule matching every request.'),
});

export const HTTP_ROUTE_API_VERSION = `${GATEWAY_API_GROUP}/v1`;

export const httpRouteSchema = documentSchema(
  'HTTPRoute',
  HTTP_ROUTE_API_VERSION,
  dns1123Subdomain(),
  httpRouteSpecSchema,
);
export type HTTPRoute = Infer<typeof httpRouteSchema>;
export type HTTPRouteRule = Infer<typeof httpRouteRuleSchema>;
export type HTTPRouteMatch = Infer<typeof httpRouteMatchSchema>;

export const httpRouteKind = defineKind({
  kind: 'HTTPRoute',
  apiVersion: HTTP_ROUTE_API_VERSION,
  apiVersions: [HTTP_ROUTE_API_VERSION, `${GATEWAY_API_GROUP}/v1beta1`],
  plural: 'httproutes',
  singular: 'httproute',
  shortNames: ['hr'],
  namespaced: true,
  description: 'Gateway API HTTP routing for requests to the parent Services (mesh/GAMMA form).',
  schema: httpRouteSchema,
  warnings: (route) => {
    const name = `HTTPRoute ${route.metadata.namespace}/${route.metadata.name}`;
    const warnings: string[] = [];
    if (route.spec.hostnames !== undefined)
      warnings.push(`${name}: spec.hostnames is ignored for Service parents`);
    route.spec.rules.forEach((rule, i) => {
      if (rule.backendRefs === undefined || rule.backendRefs.length === 0) {
        const redirects = rule.filters?.some((f) => f.type === 'RequestRedirect') ?? false;
        if (!redirects)
          warnings.push(
            `${name}: spec.rules[${i}] has no backendRefs, so matching requests are not forwarded`,
          );
      }
    });
    return warnings;
  },
});
