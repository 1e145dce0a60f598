/**
 * Dual stack (issue #19 item 2) in the manager: a task on a dual-stack network gets an IPv6 address
 * next to its IPv4 one (all or none), it rides in the assignment (ip6/prefix6, network subnet6) and
 * into the endpoint record, goes back to the pool with the task, and is re-claimed when a manager
 * reloads state. An IPv4-only network's assignment is byte-for-byte what it was.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import { ControlState } from '../../../src/manager/control/state.js';
import { ipamRequestOf } from '../../../src/manager/control/network-model.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../../src/manager/control/model.js';
import { endpointRecord, validateAssignments } from '../../../src/agent/worker/plan.js';

const net6: NetworkRecord = {
  id: 'n6', name: 'app6', driver: 'overlay', subnet: '10.61.0.0/24', gateway: '10.61.0.1', subnet6: 'fd00:61::/64', gateway6: 'fd00:61::1',
  vni: 4100, attachable: false, ingress: false, createdAt: 0,
};
const net4: NetworkRecord = { id: 'n4', name: 'plain', driver: 'overlay', subnet: '10.62.0.0/24', gateway: '10.62.0.1', vni: 4101, attachable: false, ingress: false, createdAt: 0 };

function fixture(): { st: ControlState; svc: ServiceRecord; task: TaskRecord } {
  const st = new ControlState();
  for (const n of [net6, net4]) {
    st.ipam.create(ipamRequestOf(n));
    st.networks.set(n.id, n);
  }
  const spec = parseServiceSpec({ name: 'web', image: 'nginx', networks: ['app6', 'plain'] });
  const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: { n6: '10.61.0.2', n4: '10.62.0.2' }, createdAt: 0, updatedAt: 0 };
  const task: TaskRecord = {
    id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
    state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: {},
  } as TaskRecord;
  return { st, svc, task };
}

describe('manager: IPv6 task addresses', () => {
  test('allocated on the dual-stack network only; carried in the assignment and the endpoint record', () => {
    const { st, svc, task } = fixture();
    const got = st.allocateTask(task, ['n6', 'n4']);
    assert.deepEqual(got, { addresses: { n6: '10.61.0.2', n4: '10.62.0.2' }, addresses6: { n6: 'fd00:61::2' } });
    const t = { ...task, ...got };
    const a = assignmentFor(t, svc, new Map([['app6', net6], ['plain', net4]]))!;
    const [a6, a4] = a.attachments;
    assert.equal(a6!.ip6, 'fd00:61::2');
    assert.equal(a6!.prefix6, 64);
    assert.equal(a6!.network.subnet6, 'fd00:61::/64');
    assert.equal(a6!.network.gateway6, 'fd00:61::1');
    assert.deepEqual(Object.keys(a4!).sort(), ['aliases', 'ip', 'mac', 'network', 'prefix', 'vip'], 'IPv4-only attachment unchanged');
    assert.equal('subnet6' in a4!.network, false);
    validateAssignments([a]);
    assert.equal(endpointRecord(a, a6!, 'node1', '192.168.1.1', 'running').ip6, 'fd00:61::2');
    assert.equal('ip6' in endpointRecord(a, a4!, 'node1', '192.168.1.1', 'running'), false);
  });
  test('released with the task; re-claimed on load (not handed out twice)', () => {
    const { st, task } = fixture();
    const got = st.allocateTask(task, ['n6']);
    const t = { ...task, ...got };
    st.releaseTask(t);
    assert.equal(st.ipam.allocateAddress6('app6', 'x'), 'fd00:61::3', 'cursor moved on: a freed address is not reused at once');
    const { st: st2 } = fixture();
    (st2 as unknown as { claim6(n: string, o: string, ip: string): void }).claim6('n6', 'task:t', 'fd00:61::2');
    assert.throws(() => st2.ipam.allocateAddress6('app6', 'y', 'fd00:61::2'), /already held by task:t/);
  });
  test('the worker refuses an IPv6 address outside subnet6 or not canonical', () => {
    const { st, svc, task } = fixture();
    const t = { ...task, ...st.allocateTask(task, ['n6', 'n4']) };
    const a = assignmentFor(t, svc, new Map([['app6', net6], ['plain', net4]]))!;
    const with6 = (ip6: string) => ({ ...a, attachments: [{ ...a.attachments[0]!, ip6 }, a.attachments[1]!] });
    assert.throws(() => validateAssignments([with6('fd00:62::2')]), /outside fd00:61::\/64/);
    assert.throws(() => validateAssignments([with6('fd00:61:0::2')]), /not in canonical form \(fd00:61::2\)/);
    assert.throws(() => validateAssignments([with6('fd00:61::1')]), /anycast or gateway/);
  });
});
