// Kubernetes naming rules and the shared `metadata` schema, written once so that every kind
// rejects the same bad names with the same words.
import { isIP } from 'node:net';
import { int, object, record, string } from '../schema/schema.js';
import type { Report, StringSchema } from '../schema/schema.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Whether `name` can be a Service name (and so a DNS label): what implicit services need. */
export function isDns1035Label(name: string): boolean {
  return name.length <= 63 && DNS1035_LABEL.test(name);
}
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
// IANA service names: what Kubernetes allows for a named container or target port.
const IANA_SERVICE_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*$/;

export const dns1123Label = (): StringSchema<string> =>
  string({
    minLength: 1,
    maxLength: 63,
    format: {
      description:
        'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit)',
      test: DNS1123_LABEL,
    },
  });

export const dns1123Subdomain = (): StringSchema<string> =>
  string({
    minLength: 1,
    maxLength: 253,
    format: {
      description:
        'a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", each dot-separated part starting and ending with a letter or digit)',
      test: DNS1123_SUBDOMAIN,
    },
  });

export const dns1035Label = (): StringSchema<string> =>
  string({
    minLength: 1,
    maxLength: 63,
    format: {
      description:
        'a DNS-1035 label (lowercase letters, digits and "-", starting with a letter and ending with a letter or digit)',
      test: DNS1035_LABEL,
    },
  });

export const ianaServiceName = (): StringSchema<string> =>
  string({
    minLength: 1,
    maxLength: 15,
    format: {
      description:
        'an IANA service name (lowercase letters, digits and single "-", at least one letter, not starting or ending with "-")',
      test: (s) => IANA_SERVICE_NAME.test(s) && !s.endsWith('-'),
    },
  });

/** `prefix/name` as in label and annotation keys: DNS subdomain prefix (optional) + qualified name. */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !(prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && QUALIFIED_NAME_PART.test(name);
}

export const qualifiedName = (): StringSchema<string> =>
  string({
    minLength: 1,
    format: {
      description:
        'a qualified name: an optional DNS subdomain prefix and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
      test: isQualifiedName,
    },
  });

export const labelValue = (): StringSchema<string> =>
  string({
    maxLength: 63,
    format: {
      description: 'empty or letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
      test: (s) => s === '' || QUALIFIED_NAME_PART.test(s),
    },
  });

export const labelMap = () => record(labelValue(), { key: qualifiedName() });

export const portNumber = () => int({ min: 1, max: 65535 });

/** An IPv4 or IPv6 literal, or a DNS hostname. */
export const address = (): StringSchema<string> =>
  string({
    minLength: 1,
    maxLength: 253,
    format: {
      description: 'an IPv4 or IPv6 address or a DNS hostname',
      test: (s) => isIP(s) !== 0 || DNS1123_SUBDOMAIN.test(s.toLowerCase()),
    },
  });

// Kubernetes caps all annotations of one object together, not each value.
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

function checkAnnotationsSize(annotations: Record<string, string>, report: Report): void {
  let total = 0;
  for (const [key, value] of Object.entries(annotations))
    total += Buffer.byteLength(key) + Buffer.byteLength(value);
  if (total > MAX_ANNOTATIONS_BYTES) {
    report('', `annotations must total at most ${MAX_ANNOTATIONS_BYTES} bytes, got ${total}`);
  }
}

/** Fields the server sets; accepted so `get -o yaml` output can be re-applied, then dropped. */
export const READ_ONLY_METADATA_FIELDS = ['creationTimestamp', 'generation', 'uid'] as const;

export function metadataSchema(nameSchema: StringSchema<string>) {
  return object(
    {
      name: nameSchema.describe('Name, unique per kind and namespace.'),
      namespace: dns1123Label().default('default').describe('Namespace (DNS-1123 label).'),
      labels: labelMap()
        .optional()
        .describe('Kubernetes labels: keys `[prefix/]name`, values at most 63 characters.'),
      annotations: record(string(), { key: qualifiedName() })
        .refine(checkAnnotationsSize)
        .optional()
        .describe('Free-form annotations; keys follow label key rules, at most 256 KiB in total.'),
      resourceVersion: string({
        minLength: 1,
        maxLength: 20,
        format: { description: 'a string of digits (quote it in YAML)', test: /^[0-9]+$/ },
      })
        .optional()
        .describe(
          'Set to the version last read to make an update fail if someone else changed the resource since.',
        ),
    },
    { ignored: READ_ONLY_METADATA_FIELDS },
  );
}
