import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import { eventsForTaskChange, replacementEvents } from '../../../src/core/orchestrator/events.js';
import type { Task } from '../../../src/core/spec/types.js';
import { isServing, taskSpecOf } from '../../../src/core/spec/types.js';
import { idGen, spec } from './fixtures.js';

const v1 = spec({ image: 'app:1', updateConfig: { parallelism: 1, monitorMs: 0 } });
const v2 = spec({ image: 'app:2', updateConfig: { parallelism: 1, monitorMs: 0 } });
const task = (id: string, slot: number, state: Task['state'], nodeId?: string): Task => ({
  id, serviceId: 'web', slot, nodeId, specVersion: 1, spec: taskSpecOf(v1), desiredState: 'running', state, timestamps: { created: 0, updated: 0 },
});
const make = (tasks: Task[]) => new RollingUpdate({ serviceId: 'web', from: { version: 1, spec: v1 }, to: { version: 2, spec: v2 }, tasks, now: 0, newId: idGen('n') });
const types = (ru: RollingUpdate) => ru.drain().map((a) => a.type + (a.type === 'createTask' ? `:${a.task.desiredState}` : a.type === 'updateState' ? `:${a.state}` : ''));

describe('RollingUpdate steps', () => {
  test('an old task never handed to an agent is replaced at once (no drain, no stop wait)', () => {
    const ru = make([task('o1', 1, 'pending')]);
    assert.deepEqual(types(ru), ['updateState:updating', 'shutdownTask', 'createTask:running']);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 10);
    assert.deepEqual(types(ru), ['updateState:completed']);
  });

  test('a running old task is drained first; an assigned one is only stopped', () => {
    const ru = make([task('o1', 1, 'running', 'a'), task('o2', 2, 'assigned', 'b')]);
    assert.deepEqual(types(ru), ['updateState:updating', 'drainTask']);
    ru.handle({ type: 'taskDrained', taskId: 'o1' }, 1);
    assert.deepEqual(types(ru), ['shutdownTask', 'createTask:ready']);
    assert.equal(ru.nextDeadline(), 1 + 30_000, 'stop timeout');
    ru.handle({ type: 'taskStopped', taskId: 'o1' }, 2);
    assert.deepEqual(types(ru), ['startTask']);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 3);
    assert.deepEqual(types(ru), ['shutdownTask', 'createTask:ready']);
    ru.handle({ type: 'taskStopped', taskId: 'o2' }, 4);
    ru.handle({ type: 'taskRunning', taskId: 'n2' }, 5);
    assert.deepEqual(types(ru), ['startTask', 'updateState:completed']);
  });

  test('events for unknown tasks are ignored; nextDeadline is undefined when idle', () => {
    const ru = make([task('o1', 1, 'running', 'a')]);
    ru.drain();
    ru.handle({ type: 'taskDrained', taskId: 'nope' }, 1);
    ru.handle({ type: 'taskRunning', taskId: 'nope' }, 1);
    assert.deepEqual(ru.drain(), []);
    assert.equal(ru.nextDeadline(), 30_000, 'drain timeout only');
  });

  test('taskReplaced makes rollback follow the slot\'s new task', () => {
    const ru = make([task('o1', 1, 'running', 'a')]);
    ru.handle({ type: 'taskDrained', taskId: 'o1' }, 1);
    ru.handle({ type: 'taskStopped', taskId: 'o1' }, 2);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 3);
    assert.equal(ru.state, 'completed');
    const restarted: Task = { ...task('r1', 1, 'running', 'b'), specVersion: 2, spec: taskSpecOf(v2) };
    ru.handle({ type: 'taskReplaced', oldTaskId: 'n1', task: restarted }, 4);
    ru.drain();
    ru.rollback(5);
    const acts = ru.drain();
    assert.deepEqual(acts.map((a) => a.type), ['setServiceSpec', 'updateState', 'drainTask']);
    assert.deepEqual(acts[2], { type: 'drainTask', taskId: 'r1' });
  });
});

describe('events glue', () => {
  test('eventsForTaskChange table', () => {
    const t = (state: Task['state']) => ({ ...task('x', 1, state, 'a'), message: 'boom' });
    const table: Array<[Task['state'] | undefined, Task['state'], string[]]> = [
      ['assigned', 'running', ['taskRunning']],
      ['running', 'running', []],
      ['running', 'failed', ['taskFailed']],
      ['assigned', 'rejected', ['taskFailed']],
      ['running', 'shutdown', ['taskStopped']],
      ['running', 'orphaned', ['taskStopped']],
      ['running', 'complete', ['taskStopped', 'taskFailed']],
      [undefined, 'pending', []],
      [undefined, 'running', ['taskRunning']],
    ];
    for (const [prev, next, want] of table) {
      assert.deepEqual(eventsForTaskChange(prev ? { state: prev } : undefined, t(next)).map((e) => e.type), want, `${prev} → ${next}`);
    }
    assert.deepEqual(eventsForTaskChange({ state: 'running' }, t('failed')), [{ type: 'taskFailed', taskId: 'x', message: 'boom' }]);
  });

  test('a task with a health check is running for the update only once healthy (isServing)', () => {
    const t = (state: Task['state'], health?: Task['health']) => ({ ...task('x', 1, state, 'a'), ...(health ? { health } : {}) });
    const table: Array<[Pick<Task, 'state' | 'health'> | undefined, Task, string[]]> = [
      [{ state: 'assigned' }, t('running', 'starting'), []],
      [{ state: 'running', health: 'starting' }, t('running', 'healthy'), ['taskRunning']],
      [{ state: 'assigned' }, t('running', 'healthy'), ['taskRunning']],
      [{ state: 'running', health: 'healthy' }, t('running', 'healthy'), []],
      [{ state: 'running', health: 'healthy' }, t('running', 'unhealthy'), []],
      [{ state: 'running', health: 'unhealthy' }, t('failed', 'unhealthy'), ['taskFailed']],
    ];
    for (const [prev, next, want] of table) {
      assert.deepEqual(eventsForTaskChange(prev, next).map((e) => e.type), want, `${JSON.stringify(prev)} → ${next.state}/${next.health}`);
    }
    for (const [st, h, want] of [['running', undefined, true], ['running', 'healthy', true], ['running', 'starting', false], ['running', 'unhealthy', false], ['assigned', undefined, false]] as const) {
      assert.equal(isServing({ state: st, health: h }), want, `${st}/${h}`);
    }
  });

  test('replacementEvents picks createTask.replaces of the service', () => {
    const a = task('new', 1, 'pending');
    assert.deepEqual(replacementEvents([
      { type: 'createTask', task: a, replaces: 'old' },
      { type: 'createTask', task: { ...a, id: 'other', serviceId: 'db' }, replaces: 'x' },
      { type: 'createTask', task: { ...a, id: 'fresh' } },
      { type: 'shutdownTask', taskId: 'old', reason: 'restarting' },
    ], 'web'), [{ type: 'taskReplaced', oldTaskId: 'old', task: a }]);
  });
});
