/**
 * The worker's record encoding rule (src/agent/worker/mesh.ts, issue 18 §1): compact records only on a network
 * where every node has said it reads them; records already written are rewritten when that changes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { ENDPOINT_CODEC_TABLE, ENDPOINT_CODECS, ENDPOINT_TABLE, decodeEndpoint, endpointEncodingOf } from '../../../../src/core/endpoints.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import { TaskMesh } from '../../../../src/agent/worker/mesh.js';
import { validateAssignments } from '../../../../src/agent/worker/plan.js';
import type { OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
const a = validateAssignments([{
  task: { id: 'a1', name: 'web.1', serviceId: 's1', serviceName: 'web', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: NET, ip: '10.30.0.11', prefix: 24, mac: macFromIp('10.30.0.11'), vip: '10.30.0.2' }],
}])[0]!;
const overlay = { defineNetwork() {}, addLocal() {}, removeLocal() {}, forgetNetwork() {} } as unknown as OverlaySubsystem;
const settle = () => new Promise((r) => setImmediate(r));

function rig() {
  const g = new FakeGossip('n1');
  const nodes = ['n1', 'n2'];
  (g.core as { networkNodes: (n: string) => string[] }).networkNodes = () => [...nodes];
  const mesh = new TaskMesh({ nodeName: 'n1', nodeIp: '10.99.1.1', clock: { now: () => 0 } as never, gossip: g, overlay });
  const encoding = () => {
    const e = g.tables.get('net1')?.get('a1');
    assert.ok(e && e.table === ENDPOINT_TABLE, 'record a1 is written');
    const d = decodeEndpoint(e.value);
    assert.ok(d.ok && d.record.taskId === 'a1' && d.record.state === 'running');
    return endpointEncodingOf(e.value);
  };
  const says = (node: string) => {
    const value = new TextEncoder().encode(ENDPOINT_CODECS);
    if (!g.tables.has('net1')) g.tables.set('net1', new Map());
    g.tables.get('net1')!.set(node, { table: ENDPOINT_CODEC_TABLE, value, owner: node });
    g.emit({ type: 'create', network: 'net1', table: ENDPOINT_CODEC_TABLE, key: node, value, owner: node });
  };
  return { g, nodes, mesh, encoding, says };
}

test('mesh: says on each network it joins that it reads compact records', () => {
  const { g, mesh } = rig();
  mesh.attach(a);
  const e = g.tables.get('net1')?.get('n1');
  assert.deepEqual(e && { table: e.table, owner: e.owner, value: new TextDecoder().decode(e.value) }, { table: ENDPOINT_CODEC_TABLE, owner: 'n1', value: ENDPOINT_CODECS });
});

test('mesh: JSON while a node on the network has not said it reads compact; compact once all have; JSON again when an older node joins', async () => {
  const { g, nodes, mesh, encoding, says } = rig();
  mesh.attach(a);
  mesh.publish(a, 'running');
  assert.equal(encoding(), 'json', 'n2 has said nothing (an older agent, or its word has not arrived)');
  says('n2');
  await settle();
  assert.equal(encoding(), 'compact', 'rewritten once every node reads compact');
  assert.equal(mesh.encodingOn('net1'), 'compact');
  nodes.push('n3');
  g.emit({ type: 'network-join', node: 'n3', network: 'net1' });
  await settle();
  assert.equal(encoding(), 'json', 'an older agent joined: rewritten in JSON so it can read it');
  says('n3');
  await settle();
  assert.equal(encoding(), 'compact');
});

test('mesh: a detached task\'s record is not written again when the rule changes', async () => {
  const { g, mesh, says } = rig();
  mesh.attach(a);
  mesh.publish(a, 'running');
  mesh.detach(a, []);
  says('n2');
  await settle();
  assert.equal(g.tables.get('net1')?.get('a1'), undefined);
});
