// The resource model's front door: the registry of kinds, YAML/JSON parsing of `apply` input,
// and validation of single documents and batches into normalized, typed resources.
import { parseAllDocuments } from 'yaml';
import { WeftError } from '../errors.js';
import type { FieldError } from '../errors.js';
import { describeValue, isPlainObject } from '../schema/schema.js';
import type { KindDefinition } from './kind.js';
import { authorizationPolicyKind } from './kinds/authorization-policy.js';
import type { AuthorizationPolicy } from './kinds/authorization-policy.js';
import { grpcRouteKind } from './kinds/grpc-route.js';
import { httpRouteGroupKind } from './kinds/http-route-group.js';
import type { HTTPRouteGroup } from './kinds/http-route-group.js';
import type { GRPCRoute } from './kinds/grpc-route.js';
import { httpRouteKind } from './kinds/http-route.js';
import type { HTTPRoute } from './kinds/http-route.js';
import { meshConfigKind } from './kinds/mesh-config.js';
import type { MeshConfig } from './kinds/mesh-config.js';
import { serviceKind } from './kinds/service.js';
import type { Service } from './kinds/service.js';
import { trafficSplitKind } from './kinds/traffic-split.js';
import { trafficTargetKind } from './kinds/traffic-target.js';
import type { TrafficTarget } from './kinds/traffic-target.js';
import type { TrafficSplit } from './kinds/traffic-split.js';
import { workloadKind } from './kinds/workload.js';
import type { Workload } from './kinds/workload.js';

export type { KindDefinition } from './kind.js';
export type {
  Workload,
  Service,
  HTTPRoute,
  GRPCRoute,
  TrafficSplit,
  AuthorizationPolicy,
  TrafficTarget,
  HTTPRouteGroup,
  MeshConfig,
};
export type AnyResource =
  | Workload
  | Service
  | HTTPRoute
  | GRPCRoute
  | TrafficSplit
  | AuthorizationPolicy
  | TrafficTarget
  | HTTPRouteGroup
  | MeshConfig;
export type ResourceKind = AnyResource['kind'];

export const KINDS: readonly KindDefinition[] = [
  workloadKind,
  serviceKind,
  httpRouteKind,
  grpcRouteKind,
  trafficSplitKind,
  authorizationPolicyKind,
  trafficTargetKind,
  httpRouteGroupKind,
  meshConfigKind,
] as unknown as readonly KindDefinition[];

const KIND_NAMES = KINDS.map((k) => k.kind).join(', ');

/** A kind by its name, plural, singular or short name, ignoring case (`hr`, `HTTPRoutes`…). */
export function findKind(name: string): KindDefinition | undefined {
  const wanted = name.toLowerCase();
  return KINDS.find(
    (k) =>
      k.kind.toLowerCase() === wanted ||
      k.plural === wanted ||
      k.singular === wanted ||
      k.shortNames.includes(wanted),
  );
}

/** The kind a document of this apiVersion and kind belongs to (exact, as in documents). */
export function kindFor(apiVersion: string, kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind && k.apiVersions.includes(apiVersion));
}

// ---------------------------------------------------------------------------------------------
// Parsing

// A few aliases are normal in hand-written YAML; thousands are a "billion laughs" attack.
const MAX_ALIAS_COUNT = 100;

/** Where a parsed document came from: its YAML document's index, and its index in a List. */
export interface DocumentOrigin {
  document: number;
  item?: number;
}

/**
 * Splits multi-document YAML (JSON is YAML too) into plain values, skipping empty documents and
 * expanding `kind: List` (what `get -o yaml` prints for several resources) into its items.
 * `origins[i]` says where `documents[i]` stands in the text, in the same numbering as parse
 * errors use. Throws WEFT_E_PARSE with every syntax error's document index and line:column.
 */
export function parseDocuments(
  text: string,
  source?: string,
): { documents: unknown[]; origins: DocumentOrigin[] } {
  const where = (line?: number, column?: number): string =>
    [source, line, column].filter((part) => part !== undefined).join(':');
  let parsed;
  try {
    // logLevel 'error': warnings (e.g. a list used as a key) would go to the process's stderr.
    parsed = parseAllDocuments(text, {
      merge: true,
      uniqueKeys: true,
      prettyErrors: true,
      strict: true,
      logLevel: 'error',
    });
  } catch (e) {
    // The yaml library reports syntax errors on the documents; a throw means exhausted resources.
    throw new WeftError('WEFT_E_PARSE', `cannot parse ${source ?? 'input'}: ${errorMessage(e)}`, [
      { path: '', message: `${where()}${source ? ': ' : ''}${errorMessage(e)}` },
    ]);
  }
  const yamlDocuments = Array.isArray(parsed) ? parsed : [parsed];
  const errors: FieldError[] = [];
  const documents: unknown[] = [];
  const origins: DocumentOrigin[] = [];
  yamlDocuments.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const position = error.linePos?.[0];
        // The library appends its own "at line L, column C:"; ours leads with source:line:column.
        const firstLine = errorMessage(error).replace(/ at line \d+, column \d+:?$/, '');
        const location = where(position?.line, position?.col);
        errors.push({
          path: '',
          document: index,
          message: location ? `${location}: ${firstLine}` : firstLine,
        });
      }
      return;
    }
    if (doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const message = `${where()}${source ? ': ' : ''}${errorMessage(e)}`;
      errors.push({ path: '', document: index, message });
      return;
    }
    if (value === null || value === undefined) return;
    if (isPlainObject(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
      (value['items'] as unknown[]).forEach((item, i) => {
        documents.push(item);
        origins.push({ document: index, item: i });
      });
    } else {
      documents.push(value);
      origins.push({ document: index });
    }
  });
  if (errors.length > 0) {
    const first = errors[0];
    const summary = errors.length === 1 && first ? first.message : `${errors.length} errors`;
    throw new WeftError('WEFT_E_PARSE', `invalid YAML in ${source ?? 'input'}: ${summary}`, errors);
  }
  return { documents, origins };
}

function errorMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (message.includes('Maximum call stack size exceeded')) return 'input is too deeply nested';
  return message.split('\n')[0] ?? message;
}

// ---------------------------------------------------------------------------------------------
// Validation

export type ValidateResourceResult =
  { ok: true; resource: AnyResource; warnings: string[] } | { ok: false; errors: FieldError[] };

/**
 * Validates one document against its kind: envelope, metadata and spec errors are collected
 * together. The result is normalized: defaults applied, namespace filled in, read-only fields
 * dropped, apiVersion converted to the kind's stored version.
 */
export function validateResource(doc: unknown, index?: number): ValidateResourceResult {
  const fail = (errors: FieldError[]): ValidateResourceResult => ({
    ok: false,
    errors: index === undefined ? errors : errors.map((e) => ({ ...e, document: index })),
  });
  if (!isPlainObject(doc)) {
    return fail([
      {
        path: '',
        message: `must be a mapping with apiVersion, kind, metadata and spec, got ${describeValue(doc)}`,
      },
    ]);
  }
  const { apiVersion, kind } = doc;
  const definition = typeof kind === 'string' ? KINDS.find((k) => k.kind === kind) : undefined;
  if (!definition) {
    return fail([{ path: 'kind', message: unknownKindMessage(kind) }]);
  }
  const envelopeErrors: FieldError[] = [];
  if (typeof apiVersion !== 'string' || !definition.apiVersions.includes(apiVersion)) {
    envelopeErrors.push({
      path: 'apiVersion',
      message:
        apiVersion === undefined || apiVersion === null
          ? `required field is missing; kind ${definition.kind} allows ${definition.apiVersions.join(', ')}`
          : `must be one of ${definition.apiVersions.join(', ')} for kind ${definition.kind}, got ${describeValue(apiVersion)}`,
    });
  }
  const result = definition.schema.validate({ ...doc, apiVersion: definition.apiVersion });
  const errors = [...envelopeErrors, ...(result.ok ? [] : result.errors)];
  if (!result.ok || errors.length > 0) return fail(errors);
  const resource = result.value as AnyResource;
  const warnings = definition.warnings?.(resource) ?? [];
  if (apiVersion !== definition.apiVersion) {
    warnings.unshift(`${definition.kind} ${String(apiVersion)} is converted to ${definition.apiVersion}`);
  }
  return { ok: true, resource, warnings };
}

function unknownKindMessage(kind: unknown): string {
  const known = `known kinds: ${KIND_NAMES}`;
  if (kind === undefined || kind === null) return `required field is missing; ${known}`;
  if (typeof kind !== 'string') return `must be a string naming a kind, got ${describeValue(kind)}; ${known}`;
  const byName = findKind(kind);
  const hint = byName ? ` (did you mean "${byName.kind}"?)` : '';
  return `unknown kind ${describeValue(kind)}${hint}; ${known}`;
}

export type ValidateBatchResult =
  { ok: true; resources: AnyResource[]; warnings: string[] } | { ok: false; errors: FieldError[] };

/**
 * Validates every document and rejects the batch if any is invalid or if two documents name the
 * same resource (the later one is flagged), so that an apply is all or nothing.
 */
export function validateBatch(docs: readonly unknown[]): ValidateBatchResult {
  const errors: FieldError[] = [];
  const resources: AnyResource[] = [];
  const warnings: string[] = [];
  const firstIndexByKey = new Map<string, number>();
  docs.forEach((doc, index) => {
    const result = validateResource(doc, index);
    if (!result.ok) {
      errors.push(...result.errors);
      return;
    }
    const key = resourceKeyString(result.resource);
    const earlier = firstIndexByKey.get(key);
    if (earlier !== undefined) {
      errors.push({ path: 'metadata.name', document: index, message: `duplicate of document ${earlier}` });
      return;
    }
    firstIndexByKey.set(key, index);
    resources.push(result.resource);
    warnings.push(...result.warnings.map((w) => `document ${index}: ${w}`));
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, resources, warnings };
}

// ---------------------------------------------------------------------------------------------
// Keys

export interface ResourceKey {
  kind: string;
  namespace: string;
  name: string;
}

export const RESOURCE_KEY_PREFIX = '/weft/resources/';

export function resourceKey(resource: {
  kind: string;
  metadata: { name: string; namespace?: string };
}): ResourceKey {
  return {
    kind: resource.kind,
    namespace: resource.metadata.namespace ?? 'default',
    name: resource.metadata.name,
  };
}

/** `/weft/resources/<Kind>/<namespace>/<name>`, the resource's key in the store. */
export function resourceKeyString(
  resourceOrKey: ResourceKey | { kind: string; metadata: { name: string; namespace?: string } },
): string {
  const key = 'metadata' in resourceOrKey ? resourceKey(resourceOrKey) : resourceOrKey;
  return `${RESOURCE_KEY_PREFIX}${key.kind}/${key.namespace}/${key.name}`;
}

/** The store prefix listing every resource of a kind, or of a kind in one namespace. */
export function resourcePrefix(kind: string, namespace?: string): string {
  return namespace === undefined
    ? `${RESOURCE_KEY_PREFIX}${kind}/`
    : `${RESOURCE_KEY_PREFIX}${kind}/${namespace}/`;
}

/** Parses a store key back into its parts; undefined for keys outside the resource space. */
export function parseResourceKey(key: string): ResourceKey | undefined {
  if (!key.startsWith(RESOURCE_KEY_PREFIX)) return undefined;
  const parts = key.slice(RESOURCE_KEY_PREFIX.length).split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) return undefined;
  const [kind = '', namespace = '', name = ''] = parts;
  return { kind, namespace, name };
}
