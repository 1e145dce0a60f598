/** The manager side of runtimes: the assignment's runtime comes from the task, and a node's report lands on its record. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import { recordDescription } from '../../../src/manager/control/routes.js';
import { ControlState } from '../../../src/manager/control/state.js';
import { statusReportSchema, serviceView, taskView, type NetworkRecord, type ServiceRecord, type TaskRecord } from '../../../src/manager/control/model.js';
import { nodeView, type ManagedNode } from '../../../src/manager/model.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import type { ServiceSpecInput } from '../../../src/core/spec/validate.js';

const net: NetworkRecord = { id: 'n1d', name: 'app', driver: 'overlay', subnet: '10.10.0.0/24', gateway: '10.10.0.1', vni: 4097, attachable: false, ingress: false, createdAt: 0 };

function taskOf(over: Partial<ServiceSpecInput>): { svc: ServiceRecord; task: TaskRecord } {
  const spec = parseServiceSpec({ name: 'web', image: 'whoami', networks: ['app'], ...over });
  const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: { n1d: '10.10.0.2' }, createdAt: 0, updatedAt: 0 };
  const task: TaskRecord = {
    id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
    state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: { n1d: '10.10.0.3' },
  };
  return { svc, task };
}

describe('dispatch: the assignment\'s runtime', () => {
  const table: Array<[Partial<ServiceSpecInput>, 'netns' | 'docker']> = [
    [{ image: 'whoami' }, 'netns'],
    [{ image: 'nginx:1.25' }, 'docker'],
    [{ image: 'busybox', runtime: 'netns', command: ['sleep', '60'] }, 'netns'],
    [{ image: 'whoami', runtime: 'docker' }, 'docker'],
  ];
  for (const [over, want] of table) {
    test(`${JSON.stringify(over)} → ${want}`, () => {
      const { svc, task } = taskOf(over);
      const a = assignmentFor(task, svc, new Map([['app', net]]));
      assert.equal(a?.task.runtime, want);
      assert.equal(a?.task.image, over.image);
    });
  }
  test('a task keeps the runtime of its own spec while the service moves on (rolling update)', () => {
    const { task } = taskOf({ image: 'busybox', runtime: 'netns' });
    const { svc } = taskOf({ image: 'nginx' });
    assert.equal(assignmentFor(task, svc, new Map([['app', net]]))?.task.runtime, 'netns');
  });
  test('service and task views show the resolved runtime', () => {
    const { svc, task } = taskOf({ image: 'nginx' });
    assert.equal(serviceView(svc, [task], (id) => id).runtime, 'docker');
    assert.equal(taskView(task, 'web', () => 'n1', (id) => id).runtime, 'docker');
  });
});

describe('node description reports', () => {
  const rec: ManagedNode = {
    id: 'node1', hostname: 'n1', role: 'worker', availability: 'active', state: 'ready', labels: {}, resources: { cpuMilli: 0, memoryBytes: 0 },
    addr: '10.0.0.1', certSerial: 'x', certNotAfter: 0, createdAt: 0, updatedAt: 0,
  };
  test('the status report takes an optional description and refuses a bad one', () => {
    assert.ok(statusReportSchema.safeParse({ tasks: [] }).success, 'agents that predate it');
    assert.ok(statusReportSchema.safeParse({ tasks: [], description: { runtimes: ['netns', 'docker'], engine: { version: '20.10.24', apiVersion: '1.41' } } }).success);
    assert.ok(!statusReportSchema.safeParse({ tasks: [], description: { runtimes: ['podman'] } }).success);
  });
  test('recorded on change only; a change stamps descriptionAt; engine dropped with docker', () => {
    const st = new ControlState();
    st.nodes.set(rec.id, rec);
    assert.equal(recordDescription(st, 'node1', { runtimes: ['docker', 'netns'], engine: { version: '20.10.24', apiVersion: '1.41' } }, 1000), true);
    const n1 = st.nodes.get('node1')!;
    assert.deepEqual([n1.runtimes, n1.engine, n1.descriptionAt], [['netns', 'docker'], { version: '20.10.24', apiVersion: '1.41' }, 1000]);
    assert.equal(st.pending(), 1);
    assert.equal(recordDescription(st, 'node1', { runtimes: ['netns', 'docker'], engine: { version: '20.10.24', apiVersion: '1.41' } }, 2000), false, 'same report: no write');
    assert.equal(st.nodes.get('node1')!.descriptionAt, 1000);
    assert.equal(recordDescription(st, 'node1', { runtimes: ['netns'] }, 3000), true, 'dockerd went away');
    const n3 = st.nodes.get('node1')!;
    assert.deepEqual([n3.runtimes, n3.engine, n3.descriptionAt], [['netns'], undefined, 3000]);
    assert.equal('engine' in n3, false);
    assert.equal(recordDescription(st, 'nobody', { runtimes: ['netns'] }, 4000), false, 'unknown node: ignored');
  });
  test('node inspect / ls --format json show runtimes (netns for old records) and engine', () => {
    const old = nodeView(rec, 7);
    assert.deepEqual([old.runtimes, old.engine, old.descriptionAt], [['netns'], null, null]);
    const v = nodeView({ ...rec, runtimes: ['netns', 'docker'], engine: { version: '20.10.24', apiVersion: '1.41' }, descriptionAt: 0 }, 7);
    assert.deepEqual([v.runtimes, v.engine, v.descriptionAt], [['netns', 'docker'], { version: '20.10.24', apiVersion: '1.41' }, '1970-01-01T00:00:00.000Z']);
  });
});

describe('dispatch: limits', () => {
  test('a task\'s limits ride on its assignment (the docker runtime applies them); none: absent', () => {
    const limits = { cpuMilli: 500, memoryBytes: 64 * 2 ** 20 };
    const { svc, task } = taskOf({ image: 'nginx', limits });
    assert.deepEqual(assignmentFor(task, svc, new Map([['app', net]]))?.task.limits, limits);
    const plain = taskOf({ image: 'nginx' });
    assert.equal(assignmentFor(plain.task, plain.svc, new Map([['app', net]]))?.task.limits, undefined);
  });
});
