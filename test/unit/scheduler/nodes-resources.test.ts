/**
 * Issue 15's node rows on the pure core: constraints on engine labels and the platform,
 * reservations against reported totals (docker's pending message), strategies as the
 * cluster setting chooses them, node descriptions with resources, and the runtime check
 * that refuses limits on netns instead of dropping them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConstraints, parseConstraint, schedule } from '../../../src/core/scheduler/index.js';
import { checkRuntimeSupport, describedAs, nodeDescriptionSchema, normalizeDescription } from '../../../src/core/spec/runtime.js';
import { parseBytes, parseCpus } from '../../../src/core/spec/units.js';
import { MeshError } from '../../../src/core/errors.js';
import { countBy, node, pendingTasks, service } from '../orchestrator/fixtures.js';

const GiB = 2 ** 30;
const perNode = (r: ReturnType<typeof schedule>) => countBy(r.assignments, (a) => a.nodeId);

describe('constraints: engine.labels and node.platform', () => {
  const docker = node('d', { engine: { version: '20.10', apiVersion: '1.41', labels: { storage: 'ssd', zone: 'A' } }, platform: { os: 'linux', arch: 'x86_64' } });
  const arm = node('a', { platform: { os: 'linux', arch: 'aarch64' } });
  const bare = node('b');

  const ok = (expr: string) => [docker, arm, bare].filter(compileConstraints([expr])).map((n) => n.id);
  const cases: Array<[string, string[]]> = [
    ['engine.labels.storage==ssd', ['d']],
    ['engine.labels.zone==a', ['d']], // values compare case-insensitively, as in swarmkit
    ['engine.labels.storage!=ssd', ['a', 'b']], // a missing label satisfies !=
    ['node.platform.os==linux', ['d', 'a']],
    ['node.platform.os!=linux', ['b']], // never reported: != holds
    ['node.platform.arch==x86_64', ['d']],
    ['node.platform.arch==amd64', ['d']], // Go's name for the same arch
    ['node.platform.arch==arm64', ['a']],
    ['node.platform.arch!=x86_64', ['a', 'b']],
  ];
  for (const [expr, want] of cases) test(expr, () => assert.deepEqual(ok(expr), want));

  test('node labels and engine labels are separate namespaces', () => {
    assert.deepEqual(ok('node.labels.storage==ssd'), []);
    assert.equal(parseConstraint('Engine.Labels.x==1').field, 'engineLabel');
  });

  test('unknown keys are refused naming the supported ones', () => {
    assert.throws(() => parseConstraint('node.platform.kernel==6'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && /node\.platform\.os, node\.platform\.arch/.test(e.message));
    assert.throws(() => parseConstraint('engine.labels.==x'), /bad label key/);
  });
});

describe('reservations against what nodes report', () => {
  const nodes = ['n1', 'n2', 'n3'].map((id) => node(id, { resources: { cpuMilli: 2000, memoryBytes: 2 * GiB } }));

  test('a reservation larger than any node stays pending with docker\'s message', () => {
    const r = schedule(pendingTasks(service('big', { resources: { cpuMilli: 0, memoryBytes: 64 * GiB } }), 1), nodes, []);
    assert.equal(r.assignments.length, 0);
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (insufficient resources on 3 nodes)');
  });

  test('nodes that never reported resources (0) fit no reservation at all', () => {
    const r = schedule(pendingTasks(service('w', { resources: { cpuMilli: 100, memoryBytes: 0 } }), 1), [node('x', { resources: { cpuMilli: 0, memoryBytes: 0 } })], []);
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (insufficient resources on 1 node)');
  });

  test('binpack fills one node before the next; spread alternates', () => {
    const svc = service('w', { resources: { cpuMilli: 500, memoryBytes: 0 } });
    assert.deepEqual(perNode(schedule(pendingTasks(svc, 6), nodes, [], { strategy: 'binpack' })), { n1: 4, n2: 2 });
    assert.deepEqual(perNode(schedule(pendingTasks(svc, 6), nodes, [], { strategy: 'spread' })), { n1: 2, n2: 2, n3: 2 });
    // 13 tasks of 0.5 CPU on 3 × 2 CPUs: 12 fit, the 13th waits with the reason.
    const r = schedule(pendingTasks(svc, 13), nodes, [], { strategy: 'binpack' });
    assert.deepEqual(perNode(r), { n1: 4, n2: 4, n3: 4 });
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (insufficient resources on 3 nodes)');
  });
});

describe('node description with resources, platform and engine labels', () => {
  const reported = {
    runtimes: ['docker', 'netns'] as Array<'docker' | 'netns'>, engine: { version: '20.10', apiVersion: '1.41', labels: { z: '1', a: '2' } },
    resources: { cpuMilli: 2000, memoryBytes: 4 * GiB }, platform: { os: 'linux', arch: 'x86_64' },
  };

  test('the schema takes it; normalized runtimes and labels are ordered', () => {
    assert.equal(nodeDescriptionSchema.safeParse(reported).success, true);
    const d = normalizeDescription(reported);
    assert.deepEqual(d.runtimes, ['netns', 'docker']);
    assert.deepEqual(Object.keys(d.engine!.labels!), ['a', 'z']);
    assert.equal(nodeDescriptionSchema.safeParse({ ...reported, resources: { cpuMilli: -1, memoryBytes: 0 } }).success, false);
    assert.equal(nodeDescriptionSchema.safeParse({ ...reported, platform: { os: 'linux' } }).success, false);
  });

  test('describedAs: a change of resources, platform or labels is a change', () => {
    const d = normalizeDescription(reported);
    const rec = node('n', { runtimes: d.runtimes, engine: d.engine, resources: d.resources!, platform: d.platform });
    assert.equal(describedAs(rec, d), true);
    assert.equal(describedAs({ ...rec, resources: { cpuMilli: 1000, memoryBytes: 4 * GiB } }, d), false);
    assert.equal(describedAs({ ...rec, platform: { os: 'linux', arch: 'aarch64' } }, d), false);
    assert.equal(describedAs({ ...rec, engine: { ...rec.engine!, labels: {} } }, d), false);
  });
});

describe('limits and runtimes', () => {
  test('a limit on the netns runtime is MESHD_UNSUPPORTED naming the runtime; docker takes it', () => {
    assert.throws(() => checkRuntimeSupport({ name: 'w', image: 'whoami', limits: { cpuMilli: 500, memoryBytes: 0 } }),
      (e: unknown) => e instanceof MeshError && e.code === 'MESHD_UNSUPPORTED' && /netns runtime/.test(e.message) && e.details?.runtime === 'netns');
    checkRuntimeSupport({ name: 'w', image: 'meshd/nginx:1', limits: { cpuMilli: 500, memoryBytes: 64 * 2 ** 20 } });
    checkRuntimeSupport({ name: 'w', image: 'whoami', limits: { cpuMilli: 0, memoryBytes: 0 } });
  });

  test('docker\'s spellings of CPUs and sizes', () => {
    assert.equal(parseCpus('0.5', 'x'), 500);
    assert.equal(parseCpus(2, 'x'), 2000);
    assert.equal(parseBytes('64m', 'x'), 64 * 2 ** 20);
    assert.equal(parseBytes('1.5GiB', 'x'), 1.5 * GiB);
    assert.equal(parseBytes('50M', 'x'), 50 * 2 ** 20);
    assert.equal(parseBytes(1024, 'x'), 1024);
    for (const bad of ['-1', 'lots', '1x', '']) assert.throws(() => parseBytes(bad, '--reserve-memory'), /--reserve-memory/);
    for (const bad of ['-0.5', 'two', '0.0001']) assert.throws(() => parseCpus(bad, '--reserve-cpu'), /--reserve-cpu/);
  });
});
