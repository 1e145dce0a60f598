/**
 * Records → balancing (issue 19 §3): the service's `lb` from its records, each backend's zone
 * match and weight, and old records without the fields (defaults, nothing added). dnsrr services
 * publish through the mesh: their ingress records become an ingress publish like any other.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import { compile } from '../../../../src/core/lb/model.js';
import { ingressOf, vipServiceOf } from '../../../../src/agent/lb/plan.js';
import { endpointRecord } from '../../../../src/agent/worker/plan.js';
import { assignmentSchema } from '../../../../src/core/assignments.js';

function rec(taskId: string, over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    v: 1, taskId, taskName: `web.${taskId}`, serviceId: 'svcweb', serviceName: 'web', network: 'ingress', networkName: 'ingress',
    ip: '10.255.0.11', mac: '02:42:0a:ff:00:0b', node: 'n1', nodeIp: '10.99.1.1', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster' }], state: 'running', ...over,
  };
}

describe('lb-plan balancing', () => {
  test('lb options and zone: from the records; this node\'s zone from its own record', () => {
    const lb = { algorithm: 'source-hash' as const, locality: 'zone' as const };
    const rs = [rec('a', { lb, zone: 'eu1' }), rec('b', { ip: '10.255.0.12', node: 'n2', lb, zone: 'eu1' }), rec('c', { ip: '10.255.0.13', node: 'n3', lb, zone: 'us1' })];
    const [g] = ingressOf(rs, 'n1');
    assert.deepEqual(g!.lb, { algorithm: 'source-hash', locality: 'zone' });
    assert.deepEqual(g!.backends.map((x) => [x.id, x.local === true, x.sameZone === true]), [['a', true, true], ['b', false, true], ['c', false, false]]);
    const f = compile({ services: [], ingress: [g!] }).get('ingress tcp 8080')!;
    assert.deepEqual(f.targets.map((t) => t.ip), ['10.255.0.11', '10.255.0.12']);
    assert.equal(f.algorithm, 'source-hash');
    assert.equal(vipServiceOf(rs, 'n1')!.lb?.algorithm, 'source-hash');
  });

  test('weights from the records reach the compiled frontend', () => {
    const rs = [rec('a', { lb: { weight: 90 } }), rec('b', { ip: '10.255.0.12', lb: { weight: 10 } })];
    const f = compile({ services: [vipServiceOf(rs, 'n1')!], ingress: [] }).get('vip 10.30.0.2 tcp 80')!;
    assert.deepEqual(f.weights, [9, 1]);
    assert.equal(f.slots?.length, 10);
  });

  test('records without lb / zone: defaults, and the service object carries no lb', () => {
    const s = vipServiceOf([rec('a')], 'n1')!;
    assert.equal('lb' in s, false);
    assert.deepEqual(s.backends, [{ id: 'a', ip: '10.255.0.11', state: 'active', local: true }]);
  });

  test('dnsrr: no VIP service, but its published port is an ingress publish (swarmkit#1693)', () => {
    const rs = [rec('a', { endpointMode: 'dnsrr', vip: null }), rec('b', { endpointMode: 'dnsrr', vip: null, ip: '10.255.0.12', node: 'n2' })];
    assert.equal(vipServiceOf(rs, 'n1'), null);
    const [g] = ingressOf(rs, 'n1');
    assert.deepEqual(compile({ services: [], ingress: [g!] }).get('ingress tcp 8080')!.targets.map((t) => t.ip), ['10.255.0.11', '10.255.0.12']);
  });

  test('the worker writes lb and zone into its records only when the assignment has them; records round-trip', () => {
    const base = {
      task: { id: 't1', name: 'web.1', serviceId: 'svcweb', serviceName: 'web', image: 'whoami', argv: [], env: {} },
      desiredState: 'running', endpointMode: 'vip',
      attachments: [{ network: { id: 'app', name: 'app', vni: 4097, subnet: '10.30.0.0/24', gateway: '10.30.0.1' }, ip: '10.30.0.11', prefix: 24, mac: '02:42:0a:1e:00:0b', vip: '10.30.0.2', aliases: [] }],
    };
    const plain = endpointRecord(assignmentSchema.parse(base), assignmentSchema.parse(base).attachments[0]!, 'n1', '10.99.1.1', 'running');
    assert.equal('lb' in plain || 'zone' in plain, false, 'older agents (strict schema) still read records of services without balancing choices');
    const a = assignmentSchema.parse({ ...base, lb: { algorithm: 'round-robin' }, zone: 'eu1' });
    const r = endpointRecord(a, a.attachments[0]!, 'n1', '10.99.1.1', 'running');
    assert.deepEqual([r.lb, r.zone], [{ algorithm: 'round-robin' }, 'eu1']);
    const back = decodeEndpoint(encodeEndpoint(r));
    assert.ok(back.ok && back.record.zone === 'eu1');
    assert.equal(decodeEndpoint(new TextEncoder().encode(JSON.stringify({ ...r, lb: { weight: 0 } }))).ok, false, 'weight 0 is refused');
  });
});
