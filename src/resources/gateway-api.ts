// Schemas shared by the Gateway API route kinds (HTTPRoute, GRPCRoute), following the v1 CRDs'
// OpenAPI and CEL rules, narrowed to what Weft can serve: mesh (GAMMA) routes whose parents
// and backends are Services.
import { array, int, object, string } from '../schema/schema.js';
import type { Infer, Report } from '../schema/schema.js';
import { dns1123Label, portNumber } from './formats.js';
import { re2Problem } from './regex.js';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

export const objectName = () => string({ minLength: 1, maxLength: 253 });

export const sectionName = () =>
  string({
    minLength: 1,
    maxLength: 253,
    format: {
      description: 'a DNS-1123 subdomain',
      test: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    },
  });

const groupName = () =>
  string({
    maxLength: 253,
    format: {
      description: '"" (the core API group) or a DNS subdomain',
      test: /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    },
  });

const kindName = () =>
  string({
    minLength: 1,
    maxLength: 63,
    format: {
      description: 'a kind name (letters, digits and "-", starting with a letter)',
      test: /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/,
    },
  });

export const headerName = () =>
  string({
    minLength: 1,
    maxLength: 256,
    format: {
      description: "a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
      test: /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/,
    },
  });

export const preciseHostname = () =>
  string({
    minLength: 1,
    maxLength: 253,
    format: {
      description: 'a lowercase DNS hostname without wildcard',
      test: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    },
  });

export const hostname = () =>
  string({
    minLength: 1,
    maxLength: 253,
    format: {
      description: 'a lowercase DNS hostname, optionally starting with "*."',
      test: /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    },
  });

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const DURATION_UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Milliseconds in a Gateway API Duration such as `1h30m` or `500ms`. */
export function durationMs(duration: string): number {
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/([0-9]+)(h|ms|m|s)/g)) {
    total += Number(amount) * (DURATION_UNIT_MS[unit ?? ''] ?? 0);
  }
  return total;
}

export const duration = () =>
  string({
    minLength: 1,
    format: {
      description:
        'a Gateway API duration: up to 4 parts of 1-5 digits and a unit h, m, s or ms (e.g. "10s", "1m30s", "0s" = no timeout)',
      test: DURATION,
    },
  });

/** Reports an RE2 problem of `pattern` at `path`; used where a sibling `type` decides the syntax. */
export function checkRegex(pattern: string, path: string, report: Report): void {
  const problem = re2Problem(pattern);
  if (problem) report(path, `regular expression ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// References

export const parentRef = () =>
  object({
    group: groupName().default('').describe('API group of the parent; "" (core) for a Service.'),
    kind: kindName()
      .default('Service')
      .describe('Kind of the parent; only Service is supported (mesh routes).'),
    namespace: dns1123Label().optional().describe("Parent's namespace; defaults to the route's."),
    name: objectName().describe('Name of the parent Service.'),
    sectionName: sectionName().optional().describe('Not supported for Service parents; use port.'),
    port: portNumber().optional().describe('Attach only to this port of the Service; all ports when absent.'),
  }).refine((ref, report) => {
    if (ref.kind === 'Gateway') {
      report(
        'kind',
        'parent kind Gateway is not supported yet: Weft serves mesh (GAMMA) routes; attach the route to a Service (group "", kind Service)',
      );
    } else if (ref.kind !== 'Service') {
      report('kind', `parent kind "${ref.kind}" is not supported; only kind Service (group "") is`);
    } else if (ref.group !== '') {
      report('group', `must be "" (the core API group) for kind Service, got "${ref.group}"`);
    } else if (ref.sectionName !== undefined) {
      report('sectionName', 'is not supported for Service parents; use port to select a Service port');
    }
  });

export type ParentRef = Infer<ReturnType<typeof parentRef>>;

export const parentRefs = () =>
  array(parentRef(), { minItems: 1, maxItems: 32 })
    .refine((refs, report) => {
      const seen = new Map<string, number>();
      refs.forEach((ref, i) => {
        const key = JSON.stringify([
          ref.group,
          ref.kind,
          ref.namespace ?? '',
          ref.name,
          ref.port ?? 0,
          ref.sectionName ?? '',
        ]);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else report(`[${i}]`, `duplicate of parentRefs[${first}]`);
      });
    })
    .describe('The Services whose traffic this route applies to (at least 1, at most 32).');

function checkServiceReference(ref: { group: string; kind: string }, report: Report): void {
  if (ref.kind !== 'Service')
    report('kind', `backend kind "${ref.kind}" is not supported; only kind Service (group "") is`);
  else if (ref.group !== '')
    report('group', `must be "" (the core API group) for kind Service, got "${ref.group}"`);
}

const backendObjectFields = () => ({
  group: groupName().default('').describe('API group of the backend; "" (core) for a Service.'),
  kind: kindName().default('Service').describe('Kind of the backend; only Service is supported.'),
  name: objectName().describe('Name of the backend Service.'),
  namespace: dns1123Label().optional().describe("Backend's namespace; defaults to the route's."),
  port: portNumber().optional().describe('Service port to send to.'),
});

export const backendObjectRef = () => object(backendObjectFields()).refine(checkServiceReference);

export const backendRef = () =>
  object({
    ...backendObjectFields(),
    weight: int({ min: 0, max: 1_000_000 })
      .default(1)
      .describe('Relative share of requests; 0 sends none. Shares are weight / sum of weights.'),
  }).refine(checkServiceReference);

export type BackendRef = Infer<ReturnType<typeof backendRef>>;

export const backendRefs = () =>
  array(backendRef(), { maxItems: 16 })
    .optional()
    .describe('Where matching requests go, split by weight (at most 16).');

// ---------------------------------------------------------------------------------------------
// Matches

const matchType = () => string({ enum: ['Exact', 'RegularExpression'] });

export function headerMatch(valueMaxLength: number) {
  return object({
    type: matchType().default('Exact').describe('How value is compared.'),
    name: headerName().describe('Header name; compared case-insensitively.'),
    value: string({ minLength: 1, maxLength: valueMaxLength }).describe(
      'Value, or RE2 pattern for RegularExpression.',
    ),
  }).refine((match, report) => {
    if (match.type === 'RegularExpression') checkRegex(match.value, 'value', report);
  });
}

/** HTTP header names are case-insensitive: a list may name each header once, in any case. */
function uniqueHeaderNames(headers: readonly { name: string }[], report: Report): void {
  reportDuplicates(
    headers.map((h) => h.name.toLowerCase()),
    report,
    'name',
    'header',
  );
}

export function headerMatches(valueMaxLength: number) {
  return array(headerMatch(valueMaxLength), { maxItems: 16 })
    .refine(uniqueHeaderNames)
    .optional()
    .describe('All must match (at most 16, names unique ignoring case).');
}

/** Flags each repeated value at `[i].<field>`, naming the first occurrence; undefined never repeats. */
export function reportDuplicates(
  values: readonly (string | undefined)[],
  report: Report,
  field: string,
  noun: string,
): void {
  const first = new Map<string, number>();
  values.forEach((value, i) => {
    if (value === undefined) return;
    const earlier = first.get(value);
    if (earlier === undefined) first.set(value, i);
    else report(`[${i}]${field ? `.${field}` : ''}`, `duplicate ${noun} "${value}" (also at [${earlier}])`);
  });
}

// ---------------------------------------------------------------------------------------------
// Filters

const headerValue = () => string({ minLength: 1, maxLength: 4096 });

const headerList = () =>
  array(object({ name: headerName(), value: headerValue() }), { maxItems: 16 })
    .refine(uniqueHeaderNames)
    .optional();

export const headerModifier = () =>
  object({
    set: headerList().describe('Headers to overwrite (or add when absent).'),
    add: headerList().describe('Headers to append to existing values.'),
    remove: array(headerName(), { maxItems: 16 })
      .refine((names, report) =>
        reportDuplicates(
          names.map((n) => n.toLowerCase()),
          report,
          '',
          'header',
        ),
      )
      .optional()
      .describe('Header names to remove.'),
  });

export const requestMirror = () =>
  object({
    backendRef: backendObjectRef().describe(
      'Service that receives a copy of each request; its responses are ignored.',
    ),
    percent: int({ min: 0, max: 100 })
      .optional()
      .describe('Share of requests to mirror; all when neither this nor fraction is set.'),
    fraction: object({
      numerator: int({ min: 0 }),
      denominator: int({ min: 1 }).default(100),
    })
      .refine((f, report) => {
        if (f.numerator > f.denominator)
          report('numerator', `must be ≤ denominator (${f.denominator}), got ${f.numerator}`);
      })
      .optional()
      .describe('Share of requests to mirror as numerator/denominator.'),
  }).refine((mirror, report) => {
    if (mirror.percent !== undefined && mirror.fraction !== undefined) {
      report('fraction', 'only one of percent and fraction may be set');
    }
  });

export const pathModifier = () =>
  object({
    type: string({ enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }),
    replaceFullPath: string({ maxLength: 1024 }).optional(),
    replacePrefixMatch: string({ maxLength: 1024 }).optional(),
  }).refine((modifier, report) => {
    const field = modifier.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    const other = modifier.type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
    if (modifier[field] === undefined) report(field, `required when type is ${modifier.type}`);
    if (modifier[other] !== undefined) report(other, `must not be set when type is ${modifier.type}`);
  });

export const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
} as const;
type FilterType = keyof typeof FILTER_FIELDS;

/** Each filter names its type and sets exactly the one field that belongs to it. */
export function checkFilterFields(
  filter: { type: string } & Partial<Record<string, unknown>>,
  report: Report,
): void {
  for (const [type, field] of Object.entries(FILTER_FIELDS)) {
    const isSet = filter[field] !== undefined;
    if (type === filter.type && !isSet) report(field, `required when type is ${type}`);
    if (type !== filter.type && isSet) report(field, `must not be set when type is ${filter.type}`);
  }
}

/** The filter types that may appear only once per rule, and the pairs that exclude each other. */
export function checkFilterList(types: readonly string[], report: Report): void {
  const once: FilterType[] = [
    'RequestHeaderModifier',
    'ResponseHeaderModifier',
    'RequestRedirect',
    'URLRewrite',
  ];
  const seen = new Map<string, number>();
  types.forEach((type, i) => {
    const earlier = seen.get(type);
    if (earlier !== undefined && (once as string[]).includes(type)) {
      report(`[${i}].type`, `${type} may appear only once per rule (also at [${earlier}])`);
    }
    if (earlier === undefined) seen.set(type, i);
  });
  const redirect = seen.get('RequestRedirect');
  const rewrite = seen.get('URLRewrite');
  if (redirect !== undefined && rewrite !== undefined) {
    report(
      `[${Math.max(redirect, rewrite)}].type`,
      'a rule may have either RequestRedirect or URLRewrite, not both',
    );
  }
}
