// RBAC evaluation: Envoy's ALLOW/DENY filter semantics, principals from the verified peer,
// permissions on method, path and headers; TCP connections match no HTTP permission.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RbacPolicy, RbacRules } from '../../../../src/sidecar/runtime-config.js';
import { peerIdentityOf } from '../../../../src/sidecar/proxy/peer-identity.js';
import {
  RbacStats,
  authorize,
  denialMessage,
  evaluateRbac,
  type RbacInput,
} from '../../../../src/sidecar/proxy/rbac.js';

const FE = peerIdentityOf('spiffe://weft.local/ns/default/sa/fe', 'aa')!;
const OPS = peerIdentityOf('spiffe://weft.local/ns/ops/sa/tool', 'bb')!;

function req(method: string, path: string, headers: Record<string, string> = {}, peer = FE): RbacInput {
  const h = Object.create(null) as Record<string, string[]>;
  for (const [k, v] of Object.entries(headers)) h[k] = [v];
  return {
    peer,
    destinationPort: 15006,
    request: { method, path, authority: 'be', scheme: 'http', headers: h },
  };
}

const allowFeGetApi: RbacPolicy = {
  name: 'AuthorizationPolicy/default/be-allow-fe',
  principals: [{ authenticated: true, principalName: { exact: 'spiffe://weft.local/ns/default/sa/fe' } }],
  permissions: [
    {
      and: [{ header: { name: ':method', value: { exact: 'GET' } } }, { urlPath: { prefix: '/api/' } }],
    },
  ],
};
const denyAdmin: RbacPolicy = {
  name: 'AuthorizationPolicy/default/be-deny-admin',
  principals: [{ any: true }],
  permissions: [{ urlPath: { prefix: '/api/admin' } }],
};
const DENY: RbacRules = { action: 'DENY', statPrefix: 'Service/default/be', policies: [denyAdmin] };
const ALLOW: RbacRules = { action: 'ALLOW', statPrefix: 'Service/default/be', policies: [allowFeGetApi] };

test('an ALLOW policy lets its principal call its routes; anything else is denied by default', () => {
  assert.deepEqual(evaluateRbac([ALLOW], req('GET', '/api/users?x=1')), { allowed: true });
  for (const input of [
    req('POST', '/api/users'),
    req('GET', '/other'),
    req('GET', '/api/users', {}, OPS),
    { ...req('GET', '/api/users'), peer: undefined },
  ]) {
    const d = evaluateRbac([ALLOW], input);
    assert.equal(d.allowed, false);
    assert.equal(d.allowed ? '' : d.policy, undefined);
  }
});

test('DENY wins over ALLOW, and the denial names the policy', () => {
  const d = evaluateRbac([DENY, ALLOW], req('GET', '/api/admin/reset'));
  assert.ok(!d.allowed);
  assert.equal(d.policy, 'AuthorizationPolicy/default/be-deny-admin');
  assert.equal(denialMessage(d), 'RBAC: access denied by AuthorizationPolicy/default/be-deny-admin');
  assert.deepEqual(evaluateRbac([DENY, ALLOW], req('GET', '/api/users')), { allowed: true });
});

test('the default denial names the service and the ALLOW policies that did not match', () => {
  const d = evaluateRbac([DENY, ALLOW], req('DELETE', '/api/users'));
  assert.ok(!d.allowed);
  assert.equal(
    denialMessage(d),
    'RBAC: access denied: no ALLOW policy matched for Service/default/be (ALLOW policies: AuthorizationPolicy/default/be-allow-fe)',
  );
});

test('namespace principals by prefix, header permissions, not and or', () => {
  const rules: RbacRules = {
    action: 'ALLOW',
    statPrefix: '',
    policies: [
      {
        name: 'p',
        principals: [{ authenticated: true, principalName: { prefix: 'spiffe://weft.local/ns/ops/' } }],
        permissions: [
          {
            and: [
              { header: { name: 'x-team', value: { prefix: 'sre-' } } },
              { not: { urlPath: { exact: '/secret' } } },
            ],
          },
          { or: [{ urlPath: { exact: '/healthz' } }] },
        ],
      },
    ],
  };
  assert.equal(evaluateRbac([rules], req('GET', '/x', { 'x-team': 'sre-1' }, OPS)).allowed, true);
  assert.equal(evaluateRbac([rules], req('GET', '/secret', { 'x-team': 'sre-1' }, OPS)).allowed, false);
  assert.equal(evaluateRbac([rules], req('GET', '/x', { 'x-team': 'dev' }, OPS)).allowed, false);
  assert.equal(evaluateRbac([rules], req('GET', '/healthz', {}, OPS)).allowed, true);
  assert.equal(evaluateRbac([rules], req('GET', '/healthz', {}, FE)).allowed, false);
});

test('a TCP connection matches no HTTP permission: an HTTP-only ALLOW denies it', () => {
  const tcp: RbacInput = { peer: FE, destinationPort: 15006 };
  assert.equal(evaluateRbac([ALLOW], tcp).allowed, false);
  const anyFromFe: RbacRules = {
    action: 'ALLOW',
    statPrefix: '',
    policies: [{ ...allowFeGetApi, permissions: [{ any: true }] }],
  };
  assert.equal(evaluateRbac([anyFromFe], tcp).allowed, true);
  assert.equal(evaluateRbac([anyFromFe], { ...tcp, peer: undefined }).allowed, false);
});

test('an ALLOW filter with no policies denies everything; no filters allow everything', () => {
  assert.equal(
    evaluateRbac([{ action: 'ALLOW', statPrefix: '', policies: [] }], req('GET', '/')).allowed,
    false,
  );
  assert.equal(
    evaluateRbac([{ action: 'DENY', statPrefix: '', policies: [] }], req('GET', '/')).allowed,
    true,
  );
  assert.equal(authorize(undefined, req('GET', '/'), undefined).allowed, true);
});

test('stats count every decision per policy and action', () => {
  const stats = new RbacStats();
  authorize([DENY, ALLOW], req('GET', '/api/users'), stats);
  authorize([DENY, ALLOW], req('GET', '/api/users'), stats);
  authorize([DENY, ALLOW], req('GET', '/api/admin'), stats);
  authorize([DENY, ALLOW], req('PUT', '/api/users'), stats);
  assert.deepEqual(stats.view(), {
    allowed: 2,
    denied: 2,
    policies: [
      { policy: 'AuthorizationPolicy/default/be-allow-fe', action: 'ALLOW', allowed: 2, denied: 0 },
      { policy: 'AuthorizationPolicy/default/be-deny-admin', action: 'DENY', allowed: 0, denied: 1 },
      { policy: 'no ALLOW policy matched for Service/default/be', action: 'ALLOW', allowed: 0, denied: 1 },
    ],
  });
});
