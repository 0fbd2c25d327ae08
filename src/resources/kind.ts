// What the registry knows about a kind: its schema (type and validator in one), the names a
// kubectl-like CLI accepts for it, and which apiVersions it is written in.
import { literal, object } from '../schema/schema.js';
import type { Infer, Schema, StringSchema } from '../schema/schema.js';
import { metadataSchema } from './formats.js';

export interface KindDefinition<S extends Schema<unknown> = Schema<unknown>> {
  kind: string;
  /** The version resources are stored and returned in. */
  apiVersion: string;
  /** Every version accepted on input, converted to `apiVersion` (identical shapes). */
  apiVersions: readonly string[];
  plural: string;
  singular: string;
  shortNames: readonly string[];
  namespaced: boolean;
  description: string;
  /** The whole document: apiVersion, kind, metadata, spec. */
  schema: S;
  /** Things that are valid but probably not what the author meant. */
  warnings?: (resource: Infer<S>) => string[];
}

export function defineKind<S extends Schema<unknown>>(definition: KindDefinition<S>): KindDefinition<S> {
  return definition;
}

/**
 * The kubectl-style envelope around a kind's spec. A top-level `status` is accepted and dropped,
 * like metadata's read-only fields, so that `get -o yaml` output can be re-applied.
 */
export function documentSchema<const K extends string, const V extends string, Spec extends Schema<unknown>>(
  kind: K,
  apiVersion: V,
  nameSchema: StringSchema<string>,
  spec: Spec,
) {
  return object(
    {
      apiVersion: literal(apiVersion),
      kind: literal(kind),
      metadata: metadataSchema(nameSchema),
      spec,
    },
    { ignored: ['status'] },
  );
}
