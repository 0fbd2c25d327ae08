// MeshConfig: mesh-wide settings, one resource for the whole mesh (`weft-system/default`, where
// Istio keeps its mesh config too). It holds the mTLS mode between sidecars and how sidecars
// normalize request paths; without a MeshConfig the mesh runs as `mode: STRICT` and
// `normalization: MERGE_SLASHES`.
import { object, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1123Subdomain } from '../formats.js';
import { defineKind, documentSchema } from '../kind.js';

export const MESH_CONFIG_API_VERSION = 'weft.dev/v1alpha1';
/** The one MeshConfig the mesh reads; any other name or namespace is refused. */
export const MESH_CONFIG_NAMESPACE = 'weft-system';
export const MESH_CONFIG_NAME = 'default';

export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
/**
 * Istio's default is BASE; Weft also merges slashes, because `//admin` reaching an app that
 * merges them (many servers and frameworks do) walks around a DENY on `/admin`, while an app that
 * tells `//` from `/` is rare. Decoding `%2F` stays opt-in: it changes what apps that carry
 * encoded slashes inside a segment (`/repos/a%2Fb`) receive. docs/authorization.md says more.
 */
export const DEFAULT_PATH_NORMALIZATION = 'MERGE_SLASHES';

export const meshConfigSpecSchema = object({
  mtls: object({
    mode: string({ enum: ['STRICT', 'PERMISSIVE'] as const })
      .default('STRICT')
      .describe(
        'STRICT: sidecars accept only mutual TLS from other sidecars. PERMISSIVE: they also accept plaintext (for migrating clients without a sidecar).',
      ),
  })
    .default({ mode: 'STRICT' })
    .describe('Mutual TLS between sidecars.'),
  pathNormalization: object({
    normalization: string({ enum: PATH_NORMALIZATIONS })
      .default(DEFAULT_PATH_NORMALIZATION)
      .describe(
        'NONE: paths go as received. BASE: RFC 3986 normalization (dot segments, %2e, unreserved escapes decoded, backslash as slash). MERGE_SLASHES: BASE, then runs of "/" become one. DECODE_AND_MERGE_SLASHES: %2F and %5C decoded first, then MERGE_SLASHES.',
      ),
  })
    .default({ normalization: DEFAULT_PATH_NORMALIZATION })
    .describe(
      "How every sidecar normalizes request paths before authorization, routing and the app see them (as Istio's meshConfig.pathNormalization).",
    ),
});

export const meshConfigSchema = documentSchema(
  'MeshConfig',
  MESH_CONFIG_API_VERSION,
  dns1123Subdomain(),
  meshConfigSpecSchema,
).refine((doc, report) => {
  if (doc.metadata.name !== MESH_CONFIG_NAME)
    report('metadata.name', `must be "${MESH_CONFIG_NAME}": the mesh has one MeshConfig`);
  if (doc.metadata.namespace !== MESH_CONFIG_NAMESPACE)
    report('metadata.namespace', `must be "${MESH_CONFIG_NAMESPACE}": the mesh has one MeshConfig`);
});
export type MeshConfig = Infer<typeof meshConfigSchema>;

export const meshConfigKind = defineKind({
  kind: 'MeshConfig',
  apiVersion: MESH_CONFIG_API_VERSION,
  apiVersions: [MESH_CONFIG_API_VERSION],
  plural: 'meshconfigs',
  singular: 'meshconfig',
  shortNames: ['mc'],
  namespaced: true,
  description: 'Mesh-wide settings (mTLS mode, path normalization); one resource, weft-system/default.',
  schema: meshConfigSchema,
});
