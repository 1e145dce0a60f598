/**
 * The policy subsystem's shell (issue #19) on simulated time with a recording exec: the first
 * apply is the full table, an endpoint change one element delta in the same namespace, a failed
 * delta a full resync, an allow-from edit (new assignments) a re-creation, opening a service the
 * table's removal; a task that leaves is forgotten without touching its namespace.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { PolicySubsystem } from '../../../../src/agent/policy/policy.js';
import type { Exec, ExecResult } from '../../../../src/adapters/exec.js';
import type { Assignment } from '../../../../src/core/assignments.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import { assignmentFor } from '../../../../src/manager/control/dispatch.js';
import { flush } from '../../../helpers/until.js';

function rec(task: string, service: string, ip: string): EndpointRecord {
  return {
    v: 1, taskId: task, taskName: `${service}.1`, serviceId: `id${service}`, serviceName: service, network: 'netapp', networkName: 'app',
    ip, mac: '02:42:0a:00:01:05', node: 'n2', nodeIp: '10.99.1.2', vip: null, endpointMode: 'vip', aliases: [], ports: [], state: 'running',
  };
}

function assignment(allowFrom?: string[], defaultDeny = false): Assignment {
  return {
    task: { id: 'tweb1', name: 'web.1.tweb1', serviceId: 'idweb', serviceName: 'web', image: 'whoami', argv: [], env: {}, runtime: 'netns' },
    desiredState: 'running', endpointMode: 'vip', ports: [],
    attachments: [{ network: { id: 'netapp', name: 'app', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', ...(defaultDeny ? { defaultDeny: true as const } : {}) }, ip: '10.0.1.5', prefix: 24, mac: '02:42:0a:00:01:05', vip: null, aliases: [] }],
    ...(allowFrom ? { allowFrom } : {}),
  };
}

function rig(o: { startingNetns?: boolean } = {}) {
  const clock = new ManualClock(1000);
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const onAssign: Array<() => void> = [];
  let list: Assignment[] = [assignment(['client'], true)];
  const calls: Array<{ netns: string; input: string }> = [];
  let failNext = 0;
  const exec: Exec = {
    run: async (_cmd, _args, opts = {}): Promise<ExecResult> => {
      calls.push({ netns: opts.netns ?? '', input: opts.input ?? '' });
      if (failNext > 0) {
        failNext--;
        return { code: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory' };
      }
      return { code: 0, stdout: '', stderr: '' };
    },
    check: async () => '',
  };
  const p = new PolicySubsystem({
    nodeName: 'n1', clock, log: pino({ level: 'silent' }), exec,
    onGossip: (l) => listeners.push(l), networks: () => ['netapp'],
    tableEntries: () => [{ key: 'tcli1', value: encodeEndpoint(rec('tcli1', 'client', '10.0.1.9')) }],
    assignments: () => list, onAssignments: (fn) => onAssign.push(fn), taskNetns: (id) => (!o.startingNetns && list.some((a) => a.task.id === id) ? 'pfx-t-tweb1' : null),
  });
  const table = (type: 'create' | 'delete', r: EndpointRecord) => {
    for (const l of listeners) l({ type, network: 'netapp', table: ENDPOINT_TABLE, key: r.taskId, value: encodeEndpoint(r), owner: r.node });
  };
  const setList = (l: Assignment[]) => {
    list = l;
    for (const f of onAssign) f();
  };
  const settle = async () => {
    // Not p.idle(): a key waiting on back-off is not idle, and only the clock moves it.
    for (let i = 0; i < 8; i++) {
      clock.advance(1);
      await flush(5);
    }
  };
  return { p, clock, calls, table, setList, settle, failNext: (n: number) => (failNext = n) };
}

test('full table first, then one element delta per endpoint change, in the task namespace', async () => {
  const r = rig();
  await r.p.start();
  await r.settle();
  assert.equal(r.calls.length, 1);
  assert.equal(r.calls[0]!.netns, 'pfx-t-tweb1');
  assert.match(r.calls[0]!.input, /elements = \{ 10\.0\.1\.9 \}/);
  r.table('create', rec('tcli2', 'client', '10.0.1.10'));
  r.table('create', rec('trogue', 'rogue', '10.0.1.20'));
  await r.settle();
  assert.equal(r.calls.length, 2, 'the rogue endpoint changes nothing; both events coalesce into one apply');
  assert.equal(r.calls[1]!.input, 'add element inet meshd-policy allow-netapp { 10.0.1.10 }\n');
  r.table('delete', rec('tcli1', 'client', '10.0.1.9'));
  await r.settle();
  assert.equal(r.calls[2]!.input, 'delete element inet meshd-policy allow-netapp { 10.0.1.9 }\n');
  assert.deepEqual(r.p.status().namespaces.map((n) => [n.service, n.applied, n.policy?.rules[0]?.allowed]), [['web', true, ['10.0.1.10']]]);
  await r.p.stop();
});

test('a failed delta is retried at once as a full table; a failed full apply is retried by the loop', async () => {
  const r = rig();
  await r.p.start();
  await r.settle();
  r.failNext(1);
  r.table('create', rec('tcli2', 'client', '10.0.1.10'));
  await r.settle();
  assert.equal(r.calls.length, 3);
  assert.match(r.calls[2]!.input, /^add table inet meshd-policy\ndelete table/);
  assert.match(r.calls[2]!.input, /elements = \{ 10\.0\.1\.9, 10\.0\.1\.10 \}/);
  r.failNext(2);
  r.table('create', rec('tcli3', 'client', '10.0.1.11'));
  await r.settle();
  assert.equal(r.p.status().namespaces[0]!.applied, false);
  assert.match(r.p.status().namespaces[0]!.error ?? '', /No such file/);
  r.calls.length = 0;
  for (let i = 0; i < 5 && !r.p.status().namespaces[0]!.applied; i++) {
    r.clock.advance(600);
    await r.settle();
  }
  assert.equal(r.p.status().namespaces[0]!.applied, true, JSON.stringify(r.p.status()));
  assert.match(r.calls.at(-1)!.input, /^add table/);
  await r.p.stop();
});

test('allow-from edits re-create the table; open removes it; a task that leaves is forgotten untouched', async () => {
  const r = rig();
  await r.p.start();
  await r.settle();
  r.setList([assignment(['client', 'rogue'], true)]);
  await r.settle();
  assert.match(r.calls.at(-1)!.input, /allow-from client,rogue/);
  r.setList([assignment(undefined, false)]);
  await r.settle();
  assert.equal(r.calls.at(-1)!.input, 'add table inet meshd-policy\ndelete table inet meshd-policy\n');
  const n = r.calls.length;
  r.setList([assignment(undefined, false)]);
  await r.settle();
  assert.equal(r.calls.length, n, 'an open task costs nothing');
  r.setList([]);
  await r.settle();
  assert.equal(r.calls.length, n);
  assert.deepEqual(r.p.status().namespaces, []);
  await r.p.stop();
});

test('the dispatcher hands the service\'s current allow-from and the network\'s default-deny to the node', () => {
  const net = { id: 'netapp', name: 'app', driver: 'overlay' as const, subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4097, attachable: false, ingress: false, createdAt: 0, defaultDeny: true };
  const spec = { name: 'web', image: 'whoami', env: {}, mode: { replicated: { replicas: 1 } }, endpointMode: 'vip' as const, ports: [], networks: ['app'], constraints: [], preferences: [], resources: { cpuMilli: 0, memoryBytes: 0 } };
  const svc = { id: 'idweb', version: 2, spec: { ...spec, allowFrom: ['client'] }, vips: {}, createdAt: 0, updatedAt: 0 } as never;
  const task = { id: 'tweb1', serviceId: 'idweb', slot: 1, nodeId: 'n1', specVersion: 1, spec: { ...spec }, desiredState: 'running', state: 'running', timestamps: { created: 0, updated: 0 }, addresses: { netapp: '10.0.1.5' } } as never;
  const a = assignmentFor(task, svc, new Map([['app', net]]))!;
  assert.deepEqual(a.allowFrom, ['client']);
  assert.equal(a.attachments[0]!.network.defaultDeny, true);
});

test('prepare() applies the table in the namespace it is given, though the worker does not show it yet (the task is starting)', async () => {
  // The worker's view has a task's namespace only once the runtime's start returned; prepare runs inside that start.
  const r = rig({ startingNetns: true });
  await r.p.start();
  await r.settle();
  assert.equal(r.calls.length, 0, 'nothing to apply while no namespace is known');
  await r.p.prepare('pfx-t-tweb1');
  assert.equal(r.calls.length, 1, 'the filter is applied before the application starts');
  assert.equal(r.calls[0]!.netns, 'pfx-t-tweb1');
  assert.match(r.calls[0]!.input, /add table/);
  await r.p.stop();
});
