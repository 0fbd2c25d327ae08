// The schemas of what identifies a workload, for the control plane's validation: a SPIFFE trust
// domain, and a namespace with a service account (the rules Workload resources use, so any
// registered workload has a valid SPIFFE ID).
import { dns1123Label, dns1123Subdomain } from '../resources/formats.js';
import { object, string } from '../schema/schema.js';
import { MAX_TRUST_DOMAIN, TRUST_DOMAIN } from './spiffe-id.js';

export const trustDomainSchema = () =>
  string({
    minLength: 1,
    maxLength: MAX_TRUST_DOMAIN,
    format: {
      description: 'a SPIFFE trust domain (lowercase letters, digits, ".", "-" and "_"; e.g. "example.org")',
      test: TRUST_DOMAIN,
    },
  });

export const workloadIdentitySchema = object({
  namespace: dns1123Label().describe('Namespace of the workload (DNS-1123 label).'),
  serviceAccount: dns1123Subdomain().describe('Service account of the workload (DNS-1123 subdomain).'),
});
