// MeshConfig: mesh-wide settings, one resource for the whole mesh (`weft-system/default`, where
// Istio keeps its mesh config too). Today it holds the mTLS mode between sidecars; without a
// MeshConfig the mesh runs as `mode: STRICT`.
import { object, string } from '../../schema/schema.js';
import type { Infer } from '../../schema/schema.js';
import { dns1123Subdomain } from '../formats.js';
import { defineKind, documentSchema } from '../kind.js';

export const MESH_CONFIG_API_VERSION = 'weft.dev/v1alpha1';
/** The one MeshConfig the mesh reads; any other name or namespace is refused. */
export const MESH_CONFIG_NAMESPACE = 'weft-system';
export const MESH_CONFIG_NAME = 'default';

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
  description: 'Mesh-wide settings (mTLS mode); one resource, weft-system/default.',
  schema: meshConfigSchema,
});
