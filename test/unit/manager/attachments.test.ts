/** The manager's network attachments of standalone containers: IPAM all-or-nothing, names, ownership, freeing. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlState } from '../../../src/manager/control/state.js';
import { createAttachment, deleteAttachment, dropRemovedNodesAttachments } from '../../../src/manager/control/attachments.js';
import type { NetworkRecord } from '../../../src/manager/control/model.js';
import type { ManagedNode } from '../../../src/manager/model.js';
import { thrownCode } from '../../helpers/errors.js';

function state(): ControlState {
  const st = new ControlState();
  const add = (name: string, subnet: string, attachable: boolean, vni: number): void => {
    const a = st.ipam.create({ name, subnet, attachable, vni });
    const rec: NetworkRecord = { id: `id-${name}`, name, driver: 'overlay', subnet: a.subnet, gateway: a.gateway, vni: a.vni, attachable, ingress: false, createdAt: 0 };
    st.putNetwork(rec);
  };
  add('app', '10.77.0.0/29', true, 4100); // 5 usable addresses after the gateway
  add('back', '10.78.0.0/24', true, 4101);
  add('plain', '10.79.0.0/24', false, 4102);
  st.putNode({ id: 'node1', hostname: 'n1' } as ManagedNode);
  return st;
}

describe('attachments', () => {
  test('one address per network from the network\'s pool, recorded for the calling node', () => {
    const st = state();
    const g = createAttachment(st, 'node1', { name: 'probe', networks: ['app', 'back'] }, 1, 'att1');
    assert.deepEqual(g.networks.map((n) => [n.network.name, n.ip]), [['app', '10.77.0.2'], ['back', '10.78.0.2']]);
    assert.deepEqual(st.attachments.get('att1'), { id: 'att1', name: 'probe', nodeId: 'node1', addresses: { 'id-app': '10.77.0.2', 'id-back': '10.78.0.2' }, createdAt: 1 });
  });
  test('a non-attachable network, a taken name, a service name: refused, nothing allocated', () => {
    const st = state();
    assert.equal(thrownCode(() => createAttachment(st, 'node1', { name: 'x', networks: ['back', 'plain'] }, 1, 'a')), 'MESHD_NOT_ATTACHABLE');
    createAttachment(st, 'node1', { name: 'probe', networks: ['back'] }, 1, 'b');
    assert.equal(thrownCode(() => createAttachment(st, 'node1', { name: 'probe', networks: ['back'] }, 1, 'c')), 'MESHD_BAD_ARGUMENT');
    assert.equal(thrownCode(() => createAttachment(st, 'node1', { name: 'probe', networks: ['back'], extra: 1 }, 1, 'd')), 'MESHD_BAD_ARGUMENT');
    assert.deepEqual([...st.attachments.keys()], ['b']);
    // 'back' got exactly one address: the refused ones left nothing held
    assert.equal(st.ipam.allocateAddress('back', 'check', '10.78.0.3'), '10.78.0.3');
  });
  test('exhaustion on the second network gives the first one\'s address back', () => {
    const st = state();
    for (let i = 0; i < 5; i++) createAttachment(st, 'node1', { name: `f${i}`, networks: ['app'] }, 1, `f${i}`);
    assert.throws(() => createAttachment(st, 'node1', { name: 'late', networks: ['back', 'app'] }, 1, 'late'));
    assert.equal(st.ipam.allocateAddress('back', 'check', '10.78.0.2'), '10.78.0.2', 'back\'s address was released');
  });
  test('delete frees the address at once; another node cannot delete it; removed nodes lose theirs', () => {
    const st = state();
    createAttachment(st, 'node1', { name: 'a', networks: ['app'] }, 1, 'a');
    assert.equal(thrownCode(() => deleteAttachment(st, 'node2', 'a')), 'MESHD_FORBIDDEN');
    assert.deepEqual(deleteAttachment(st, 'node1', 'a'), { removed: 'a', name: 'a' });
    assert.equal(thrownCode(() => deleteAttachment(st, 'node1', 'a')), 'MESHD_NOT_FOUND');
    assert.equal(st.ipam.allocateAddress('app', 'check', '10.77.0.2'), '10.77.0.2', 'the freed address is allocatable again');
    createAttachment(st, 'node1', { name: 'b', networks: ['app'] }, 1, 'b');
    createAttachment(st, 'node9', { name: 'gone', networks: ['app'] }, 1, 'g');
    assert.equal(dropRemovedNodesAttachments(st), 1);
    assert.deepEqual([...st.attachments.keys()], ['b']);
  });
});
