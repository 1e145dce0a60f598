/** A service's stop settings: signal names, spec validation, compose keys, and the assignment an agent gets. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isStopSignal } from '../../../src/core/spec/stop.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { parseCompose, translateStack } from '../../../src/core/compose/index.js';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../../src/manager/control/model.js';

describe('isStopSignal', () => {
  const table: Array<[string, boolean]> = [
    ['SIGTERM', true], ['term', true], ['SIGQUIT', true], ['USR1', true], ['sigwinch', true], ['15', true], ['1', true], ['64', true],
    ['SIGRTMIN+3', false], ['RTMAX-1', false], ['35', true],
    ['0', false], ['65', false], ['SIGFOO', false], ['', false], ['TERM;rm', false], ['SIGRTMIN+16', false], ['-9', false],
  ];
  for (const [s, want] of table) test(`${JSON.stringify(s)} → ${want}`, () => assert.equal(isStopSignal(s), want));
});

describe('spec: stopGracePeriodMs, stopSignal', () => {
  test('kept on the spec and on the task spec', () => {
    const s = parseServiceSpec({ name: 'web', image: 'nginx', stopGracePeriodMs: 30_000, stopSignal: 'SIGQUIT' });
    assert.equal(s.stopGracePeriodMs, 30_000);
    assert.equal(taskSpecOf(s).stopSignal, 'SIGQUIT');
  });
  for (const [bad, re] of [[{ stopSignal: 'SIGFOO' }, /unknown stop signal "SIGFOO"/], [{ stopGracePeriodMs: -1 }, /stopGracePeriodMs/], [{ stopGracePeriodMs: 1.5 }, /stopGracePeriodMs/], [{ stopGracePeriodMs: 7_200_000 }, /stopGracePeriodMs/]] as const) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseServiceSpec({ name: 'web', image: 'nginx', ...bad }), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
    });
  }
});

describe('compose stop_grace_period / stop_signal', () => {
  const file = (extra: string) => `services:\n  web:\n    image: nginx\n${extra}`;
  test('applied (never dropped)', () => {
    const s = translateStack('s', parseCompose(file('    stop_grace_period: 1m30s\n    stop_signal: SIGQUIT\n'))).services[0]!;
    assert.equal(s.stopGracePeriodMs, 90_000);
    assert.equal(s.stopSignal, 'SIGQUIT');
    assert.deepEqual(parseCompose(file('    stop_grace_period: 5s\n')).warnings, []);
  });
  test('a bad duration names the key', () => {
    assert.throws(() => parseCompose(file('    stop_grace_period: soon\n')), /^MeshError: services\.web\.stop_grace_period|services\.web\.stop_grace_period/);
  });
});

describe('dispatch: the agent gets the stop settings', () => {
  test('stopGraceMs and stopSignal on the assignment\'s task', () => {
    const net: NetworkRecord = { id: 'n1d', name: 'app', driver: 'overlay', subnet: '10.10.0.0/24', gateway: '10.10.0.1', vni: 4097, attachable: false, ingress: false, createdAt: 0 };
    const spec = parseServiceSpec({ name: 'web', image: 'nginx', networks: ['app'], stopGracePeriodMs: 20_000, stopSignal: 'QUIT' });
    const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: { n1d: '10.10.0.2' }, createdAt: 0, updatedAt: 0 };
    const task: TaskRecord = {
      id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
      state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: { n1d: '10.10.0.3' },
    };
    const a = assignmentFor(task, svc, new Map([['app', net]]));
    assert.equal(a?.task.stopGraceMs, 20_000);
    assert.equal(a?.task.stopSignal, 'QUIT');
  });
});
