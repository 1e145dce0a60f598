/**
 * The peer API's pure rules (src/agent/peer/policy.ts): the route allowlist, the role check,
 * who a certificate subject names, and node reference → member resolution.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../../src/core/errors.js';
import {
  checkPeerRequest, peerAllows, peerIdentityFromSubject, peerPath, peerRouteAccess, resolvePeer, type PeerMember,
} from '../../../../src/agent/peer/policy.js';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MeshError, String(e));
    return e.code;
  }
  return 'no error';
};

describe('route allowlist', () => {
  const cases: Array<[string, string, ReturnType<typeof peerRouteAccess>]> = [
    ['GET', '/v1/info', 'node'],
    ['GET', '/v1/lb/status', 'node'],
    ['GET', '/v1/dns/debug', 'node'],
    ['GET', '/v1/dns/stats', 'node'],
    ['GET', '/v1/overlay/status', 'node'],
    ['GET', '/v1/gossip/members', 'node'],
    ['GET', '/v1/tasks', 'node'],
    ['GET', '/v1/tasks/abc', 'node'],
    ['GET', '/v1/tasks/abc/logs', 'manager'],
    ['POST', '/v1/tasks/abc/exec', 'manager'],
    // writes and everything not listed: never over the network
    ['POST', '/v1/lb/status', null],
    ['PUT', '/v1/assignments', null],
    ['GET', '/v1/assignments', null],
    ['PUT', '/v1/ingress', null],
    ['POST', '/v1/gossip/keys', null],
    ['GET', '/v1/gossip/keys', null],
    ['POST', '/v1/cluster/leave', null],
    ['GET', '/v1/manager/services', null],
    ['GET', '/v1/peers/n2/v1/info', null],
    ['GET', '/metrics', null],
    ['GET', '/v1/tasks/abc/logs/extra', null],
    ['GET', '/v1/tasks/../gossip/keys', null],
    ['GET', '/', null],
  ];
  for (const [m, p, want] of cases) test(`${m} ${p} → ${String(want)}`, () => assert.equal(peerRouteAccess(m, p), want));
  test('a trailing or doubled slash matches like the Router does', () => {
    assert.equal(peerRouteAccess('GET', '/v1/lb/status/'), 'node');
    assert.equal(peerRouteAccess('GET', '//v1//info'), 'node');
  });
});

describe('role check', () => {
  test('table', () => {
    assert.equal(peerAllows('node', 'worker'), true);
    assert.equal(peerAllows('node', 'manager'), true);
    assert.equal(peerAllows('manager', 'manager'), true);
    assert.equal(peerAllows('manager', 'worker'), false);
  });
  test('a worker may read debug views, not exec or logs', () => {
    const worker = { nodeId: 'w1', role: 'worker' as const };
    assert.equal(checkPeerRequest('GET', '/v1/lb/status', worker), 'node');
    assert.equal(code(() => checkPeerRequest('POST', '/v1/tasks/t/exec', worker)), 'MESHD_FORBIDDEN');
    assert.equal(code(() => checkPeerRequest('GET', '/v1/tasks/t/logs', worker)), 'MESHD_FORBIDDEN');
    assert.equal(checkPeerRequest('GET', '/v1/tasks/t/logs', { nodeId: 'm1', role: 'manager' }), 'manager');
  });
  test('an unlisted route is refused for managers too', () => {
    assert.equal(code(() => checkPeerRequest('PUT', '/v1/assignments', { nodeId: 'm1', role: 'manager' })), 'MESHD_FORBIDDEN');
  });
});

describe('certificate subject', () => {
  test('CN = node id, OU = role', () => {
    assert.deepEqual(peerIdentityFromSubject({ CN: 'abc123', OU: 'worker' }), { nodeId: 'abc123', role: 'worker' });
    assert.deepEqual(peerIdentityFromSubject({ CN: 'abc123', OU: ['manager'] }), { nodeId: 'abc123', role: 'manager' });
  });
  for (const [what, s] of [
    ['no subject', undefined], ['no OU', { CN: 'abc' }], ['unknown role', { CN: 'abc', OU: 'admin' }], ['two OUs', { CN: 'abc', OU: ['worker', 'manager'] }],
    ['a CA-like CN', { CN: 'meshd-root-ca', OU: 'manager' }], ['empty CN', { CN: '', OU: 'worker' }],
  ] as const) {
    test(`refused: ${what}`, () => assert.equal(code(() => peerIdentityFromSubject(s as never)), 'MESHD_CERT_REJECTED'));
  }
});

describe('node reference → member', () => {
  const self = { name: 'n1', addr: '10.99.1.1' };
  const members: PeerMember[] = [
    { name: 'n1', addr: '10.99.1.1:7946', state: 'alive' },
    { name: 'n2', addr: '10.99.1.2:7946', state: 'alive' },
    { name: 'n3', addr: '10.99.1.3:7946', state: 'suspect' },
    { name: 'n4', addr: '10.99.1.4:7946', state: 'dead' },
    { name: 'n5', addr: '10.99.1.5:7946', state: 'left' },
  ];
  test('by name and by underlay address', () => {
    assert.deepEqual(resolvePeer('n2', self, members), { name: 'n2', ip: '10.99.1.2', self: false });
    assert.deepEqual(resolvePeer('10.99.1.2', self, members), { name: 'n2', ip: '10.99.1.2', self: false });
  });
  test('itself, by name or address, even before gossip lists it', () => {
    assert.equal(resolvePeer('n1', self, []).self, true);
    assert.equal(resolvePeer('10.99.1.1', self, []).self, true);
  });
  test('a suspect member is still asked (it may refute)', () => assert.equal(resolvePeer('n3', self, members).ip, '10.99.1.3'));
  test('dead or left: unreachable at once, with the reason', () => {
    assert.equal(code(() => resolvePeer('n4', self, members)), 'MESHD_PEER_UNREACHABLE');
    assert.equal(code(() => resolvePeer('10.99.1.5', self, members)), 'MESHD_PEER_UNREACHABLE');
  });
  test('unknown node or address', () => {
    assert.equal(code(() => resolvePeer('n9', self, members)), 'MESHD_NODE_NOT_FOUND');
    assert.equal(code(() => resolvePeer('10.99.1.9', self, members)), 'MESHD_NODE_NOT_FOUND');
  });
  test('neither a name nor an address: bad argument', () => {
    for (const bad of ['', 'N1', '../x', 'a'.repeat(40), '10.99.1.1:2378']) assert.equal(code(() => resolvePeer(bad, self, members)), 'MESHD_BAD_ARGUMENT', bad);
  });
  test('an address is matched on the host part only (port 7946 in the member address)', () => {
    assert.equal(code(() => resolvePeer('10.99.1.79', self, [{ name: 'x', addr: '10.99.1.7:9946', state: 'alive' }])), 'MESHD_NODE_NOT_FOUND');
  });
});

test('forwarded path: segments re-encoded, query kept', () => {
  assert.equal(peerPath(['tasks', 'web.1', 'logs'], 'tail=5&follow=1'), '/v1/tasks/web.1/logs?tail=5&follow=1');
  assert.equal(peerPath(['tasks', 'a/b'], ''), '/v1/tasks/a%2Fb');
});
