// What a sidecar trusts for its first call to the workload API, before it has an SVID. The
// control plane's /api/v1/info is plain HTTP, so the trust bundle in it proves nothing by itself:
// whoever can intercept that request can hand over a bundle of their own. It is trusted only
// as far as something else vouches for it:
//   - the join token's CA pin (`weft-jt-<secret>.sha256-…`): some root of the bundle must have
//     that public key, and only the roots that do are trusted. The rest of the bundle is not:
//     anyone can append a root of their own to a bundle that holds the right one;
//   - or a bundle the operator gave (--trust-bundle FILE): used instead of the answer's, all of
//     it, and still held to the pin if the token has one;
//   - or neither (a token without a pin, made by hand or by an older control plane): the bundle
//     is taken on first use, with a warning.
// Once the first SVID is in hand, the roots come with each SVID over that verified TLS.

import { bundlePins, isCaPin, splitJoinToken } from '../ca/ca-pin.js';
import { WeftError } from '../errors.js';

/** A bundle given out of band, and what to call it in messages (`--trust-bundle roots.pem`). */
export interface GivenBundle {
  pem: string;
  source: string;
}

export interface BootstrapTrust {
  /** The PEM roots the first TLS call trusts. */
  pem: string;
  /** Where they come from, for messages. */
  source: string;
  /** The token's CA pin, when it has one. */
  pin: string | undefined;
  /**
   * `pinned`: the roots of /api/v1/info's bundle the pin names; `given`: the operator's bundle;
   * `first-use`: /api/v1/info's bundle on faith (no pin, no given bundle).
   */
  basis: 'pinned' | 'given' | 'first-use';
}

const INFO_SOURCE = 'the trust bundle the control plane sent in /api/v1/info';

/**
 * The roots to trust for the first call, from the token's pin, the info answer's bundle and a
 * given bundle. WEFT_E_CA_PIN_MISMATCH when the bundle does not hold the pinned root (or the pin
 * cannot be read); the message names the two likely causes and what to do about each.
 */
export function bootstrapTrust(opts: {
  token: string;
  infoBundle: string;
  given?: GivenBundle | undefined;
  /** For the "make a new token" advice. */
  serviceAccount: string;
  namespace: string;
}): BootstrapTrust {
  const { pin } = splitJoinToken(opts.token);
  const newToken =
    `\`weft token create --service-account ${opts.serviceAccount}` +
    `${opts.namespace === 'default' ? '' : ` -n ${opts.namespace}`}\``;
  const source = opts.given?.source ?? INFO_SOURCE;
  const pem = opts.given?.pem ?? (typeof opts.infoBundle === 'string' ? opts.infoBundle : '');
  const roots = bundlePins(pem);
  if (roots.length === 0)
    throw new WeftError(
      'WEFT_E_CA_PIN_MISMATCH',
      `${source} holds no certificate, so the control plane cannot be verified`,
    );
  if (pin === undefined) return { pem, source, pin, basis: opts.given ? 'given' : 'first-use' };
  if (!isCaPin(pin))
    throw new WeftError(
      'WEFT_E_CA_PIN_MISMATCH',
      `the join token's CA pin "${pin.slice(0, 60)}" is not one this sidecar can check (expected ` +
        `"sha256-" and 43 base64url characters after the "."): was the token cut short or altered? ` +
        `Pass the whole last line of ${newToken}`,
    );
  const pinned = roots.filter((r) => r.pin === pin);
  if (pinned.length === 0)
    throw new WeftError(
      'WEFT_E_CA_PIN_MISMATCH',
      `${source} does not match the join token's CA pin ${pin} (the bundle's roots are ` +
        `${roots.map((r) => r.pin).join(', ')}); not trusting it. Either the control plane's CA ` +
        `root was rotated since the token was made: make a new one with ${newToken}; or something ` +
        `is impersonating the control plane (its API is plain HTTP): check the --control-plane ` +
        `URL and the network path to it`,
    );
  // A bundle given by the operator is trusted whole; one from the plain-HTTP answer only as far
  // as the pin vouches for it.
  if (opts.given) return { pem, source, pin, basis: 'given' };
  return {
    pem: pinned.map((r) => r.pem).join(''),
    source: `the root the join token pins (${pin})`,
    pin,
    basis: 'pinned',
  };
}
