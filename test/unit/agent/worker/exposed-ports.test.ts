/** Ports an image EXPOSEs reach the endpoint records VIP-only, so the service VIP forwards them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exposedPorts } from '../../../../src/adapters/runtime/docker.js';
import { endpointRecord } from '../../../../src/agent/worker/plan.js';
import type { Assignment } from '../../../../src/core/assignments.js';

test('Config.ExposedPorts → ports (tcp default; ranges and unknown protocols left out)', () => {
  assert.deepEqual(exposedPorts({ '6379/tcp': {}, '53/udp': {}, '80': {}, '5000-5010/tcp': {}, '132/sctp': {}, '0/tcp': {}, '70000/tcp': {} }), [
    { proto: 'tcp', port: 80 }, { proto: 'udp', port: 53 }, { proto: 'tcp', port: 6379 },
  ].sort((a, b) => a.port - b.port));
  assert.deepEqual(exposedPorts(undefined), []);
});

test('endpointRecord adds exposed ports the spec does not name, VIP-only; a named target keeps its publish', () => {
  const a = {
    task: { id: 't1', name: 'web.1', serviceId: 's', serviceName: 'web', image: 'x', argv: [], env: {}, runtime: 'docker' },
    desiredState: 'running', endpointMode: 'vip',
    attachments: [{ network: { id: 'n', name: 'front', vni: 4097, subnet: '10.0.0.0/24', gateway: '10.0.0.1' }, ip: '10.0.0.3', prefix: 24, mac: '02:42:0a:00:00:03', vip: '10.0.0.2', aliases: [] }],
    ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster' }],
  } as unknown as Assignment;
  const r = endpointRecord(a, a.attachments[0]!, 'n1', '10.99.1.1', 'running', [{ proto: 'tcp', port: 80 }, { proto: 'tcp', port: 443 }]);
  assert.deepEqual(r.ports, [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster' }, { proto: 'tcp', target: 443 }]);
  assert.deepEqual(endpointRecord(a, a.attachments[0]!, 'n1', '10.99.1.1', 'running').ports, a.ports);
});
