/**
 * The rolling-update core under the orchestrator's feet (issue 13, item 1): a slot's task
 * replaced by reconcile (node lost, restart) while the update holds it, a new task that
 * never runs, a machine created by a new leader. One test per rule; each failed before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../../../src/core/orchestrator/actions.js';
import { reconcile } from '../../../src/core/orchestrator/reconcile.js';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import { schedule } from '../../../src/core/scheduler/scheduler.js';
import { taskSpecOf, type ServiceSpec, type Task } from '../../../src/core/spec/types.js';
import { idGen, node, spec as mkSpec } from './fixtures.js';

const v1 = mkSpec({ mode: { replicated: { replicas: 3 } }, updateConfig: { parallelism: 1, delayMs: 2000 } });
const v2: ServiceSpec = { ...v1, env: { V: '2' } };
const task = (id: string, slot: number, version: 1 | 2, over: Partial<Task> = {}): Task => ({
  id, serviceId: 'web', slot, nodeId: `n${slot}`, specVersion: version, spec: taskSpecOf(version === 1 ? v1 : v2),
  desiredState: 'running', state: 'running', timestamps: { created: slot, updated: 0 }, ...over,
});
function machine(tasks: Task[], now = 0, over: Partial<ConstructorParameters<typeof RollingUpdate>[0]> = {}): RollingUpdate {
  return new RollingUpdate({ serviceId: 'web', from: { version: 1, spec: v1 }, to: { version: 2, spec: v2 }, tasks, now, newId: idGen('new'), ...over });
}
const of = <T extends Action['type']>(acts: Action[], type: T) => acts.filter((a): a is Extract<Action, { type: T }> => a.type === type);

test('an in-flight slot follows the replacement of its new task (its node was lost), and finishes when that runs', () => {
  const u = machine([task('a', 1, 1), task('b', 2, 1), task('c', 3, 1)]);
  assert.deepEqual(of(u.drain(), 'drainTask').map((a) => a.taskId), ['a']);
  u.handle({ type: 'taskDrained', taskId: 'a' }, 10);
  const next = of(u.drain(), 'createTask')[0]!.task; // desired ready until `a` stops
  u.handle({ type: 'taskStopped', taskId: 'a' }, 20);
  assert.deepEqual(of(u.drain(), 'startTask').map((a) => a.taskId), [next.id]);
  // next's node went down before it ran: reconcile replaced it.
  u.handle({ type: 'taskStopped', taskId: next.id }, 30);
  const repl = task('r1', 1, 2, { state: 'pending', nodeId: undefined });
  u.handle({ type: 'taskReplaced', oldTaskId: next.id, task: repl }, 30);
  assert.deepEqual(of(u.drain(), 'startTask'), [], 'nothing more to start: the replacement runs by itself');
  u.handle({ type: 'taskRunning', taskId: 'r1' }, 40);
  // The slot is done: the next one starts after the delay.
  u.tick(40 + 2000);
  assert.deepEqual(of(u.drain(), 'drainTask').map((a) => a.taskId), ['b']);
});

test('a new task known to have ended is never started again (its old task reports stopped after)', () => {
  const u = machine([task('a', 1, 1)]);
  u.handle({ type: 'taskDrained', taskId: 'a' }, 10);
  const next = of(u.drain(), 'createTask')[0]!.task;
  u.handle({ type: 'taskStopped', taskId: next.id }, 20); // orphaned with its node
  u.handle({ type: 'taskStopped', taskId: 'a' }, 20);
  assert.deepEqual(of(u.drain(), 'startTask'), []);
});

test('an in-flight slot whose old task was replaced by one on the target adopts it and withdraws its own new task', () => {
  const u = machine([task('a', 1, 1)]);
  u.handle({ type: 'taskDrained', taskId: 'a' }, 10);
  const next = of(u.drain(), 'createTask')[0]!.task;
  u.handle({ type: 'taskReplaced', oldTaskId: 'a', task: task('r', 1, 2, { state: 'pending', nodeId: undefined }) }, 20);
  assert.deepEqual(of(u.drain(), 'shutdownTask').map((a) => a.taskId), [next.id], 'one live task per slot');
  u.handle({ type: 'taskRunning', taskId: 'r' }, 30);
  u.tick(30);
  assert.equal(u.state, 'updating', 'the monitor period runs');
  u.tick(30 + 5001);
  assert.equal(u.state, 'completed');
});

test('a queued slot reads its task when a worker takes it: skipped when reconcile already replaced it on the target', () => {
  const u = machine([task('a', 1, 1), task('b', 2, 1), task('c', 3, 1)]);
  u.drain();
  u.handle({ type: 'taskReplaced', oldTaskId: 'b', task: task('rb', 2, 2) }, 5);
  u.handle({ type: 'taskReplaced', oldTaskId: 'c', task: task('rc', 3, 1, { id: 'rc' }) }, 5);
  u.handle({ type: 'taskDrained', taskId: 'a' }, 10);
  const next = of(u.drain(), 'createTask')[0]!.task;
  u.handle({ type: 'taskStopped', taskId: 'a' }, 20);
  u.handle({ type: 'taskRunning', taskId: next.id }, 30);
  u.tick(30 + 2000);
  // Slot 2 already runs v2: straight to slot 3, whose task is now the replacement rc.
  assert.deepEqual(of(u.drain(), 'drainTask').map((a) => a.taskId), ['rc']);
});

test('starting is bounded: a new task that never runs ends in the failure action (pause), not a hang', () => {
  const u = machine([task('a', 1, 1), task('b', 2, 1)], 0, { startTimeoutMs: 60_000 });
  u.handle({ type: 'taskDrained', taskId: 'a' }, 10);
  const next = of(u.drain(), 'createTask')[0]!.task;
  u.handle({ type: 'taskStopped', taskId: 'a' }, 20);
  u.drain();
  assert.equal(u.nextDeadline(), 20 + 60_000);
  u.tick(20 + 60_000);
  const acts = u.drain();
  assert.deepEqual(of(acts, 'shutdownTask').map((a) => a.taskId), [next.id]);
  assert.equal(u.state, 'paused');
  assert.match(of(acts, 'updateState')[0]!.message, /not running 60 s after its start/);
});

test('the update delay survives a leader change: a resumed machine waits from the last slot the old leader finished', () => {
  const u = machine([task('a2', 1, 2, { timestamps: { created: 1, updated: 10_000 } }), task('b', 2, 1)], 10_500);
  assert.deepEqual(of(u.drain(), 'drainTask'), [], 'not before 10 000 + 2 000');
  assert.equal(u.nextDeadline(), 12_000);
  u.tick(12_000);
  assert.deepEqual(of(u.drain(), 'drainTask').map((a) => a.taskId), ['b']);
});

test('a disconnected node (dead in gossip, inside the down grace) keeps its tasks but is given no new one', () => {
  const nodes = [node('n1', { state: 'disconnected' }), node('n2')];
  const svc = { id: 'web', version: 1, spec: v1 };
  const kept = task('a', 1, 1, { nodeId: 'n1' });
  const r = reconcile({ services: [svc], nodes, tasks: [kept], now: 0, newId: idGen() });
  assert.ok(!r.actions.some((a) => a.type === 'shutdownTask' && a.taskId === 'a'), 'its task stays');
  const pending = task('p', 2, 1, { nodeId: undefined, state: 'pending' });
  const res = schedule([pending], [node('n1', { state: 'disconnected' })], [kept], { now: 0 });
  assert.deepEqual(res.assignments, []);
  assert.equal(schedule([pending], nodes, [kept], { now: 0 }).assignments[0]?.nodeId, 'n2');
});
