/**
 * The worker's converge plan (src/core/worker/converge.ts) as table tests: which held tasks are
 * removed, cured, started, forgotten, drained; exit reports; adoption; leaving networks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  adoptVerdict, drainsOnExit, exitedByPoll, exitError, exitVerdict, leavesNetwork, publishedState, shortId, toCure, toDrain, toForget, toRemove, toStart,
  type DesiredTask, type HeldTask, type TaskState,
} from '../../../../src/core/worker/converge.js';

const held = (id: string, state: TaskState, extra: Partial<HeldTask> = {}): HeldTask => ({ id, state, networks: ['net1'], ...extra });
const want = (...rows: Array<[string, DesiredTask['desiredState']]>): Map<string, DesiredTask> => new Map(rows.map(([id, desiredState]) => [id, { id, desiredState }]));
const byId = (list: HeldTask[]): Map<string, HeldTask> => new Map(list.map((h) => [h.id, h]));

describe('worker converge plan', () => {
  test('toRemove: held, not desired running, not stopped yet', () => {
    const rows: Array<[string, Map<string, DesiredTask>, HeldTask[], string[]]> = [
      ['still assigned', want(['a', 'running']), [held('a', 'running')], []],
      ['unassigned running', want(), [held('a', 'running')], ['a']],
      ['desired shutdown', want(['a', 'shutdown']), [held('a', 'running')], ['a']],
      ['already stopped', want(), [held('a', 'stopped')], []],
      ['failed and unassigned: stopped again (idempotent cleanup)', want(), [held('a', 'failed')], ['a']],
      ['starting and unassigned', want(), [held('a', 'starting')], ['a']],
      ['draining and unassigned (a stop that failed before)', want(['a', 'shutdown']), [held('a', 'draining')], ['a']],
      ['mixed, in held order', want(['b', 'running']), [held('c', 'running'), held('b', 'running'), held('a', 'failed')], ['c', 'a']],
      ['failed and ended (cleaned up): never stopped again, keeps how it ended', want(['a', 'shutdown']), [held('a', 'failed', { ended: true })], []],
      ['failed and ended, unassigned', want(), [held('a', 'failed', { ended: true })], []],
      ['failed, its stop failed (not ended): retried', want(['a', 'shutdown']), [held('a', 'failed', { ended: false })], ['a']],
    ];
    for (const [name, d, h, out] of rows) assert.deepEqual(toRemove(d, h), out, name);
  });

  test('toCure: running and unhealthy only', () => {
    const rows: Array<[HeldTask, boolean]> = [
      [held('a', 'running', { health: 'unhealthy' }), true],
      [held('a', 'running', { health: 'healthy' }), false],
      [held('a', 'running', { health: 'starting' }), false],
      [held('a', 'running', { health: null }), false],
      [held('a', 'running'), false],
      [held('a', 'draining', { health: 'unhealthy' }), false],
      [held('a', 'failed', { health: 'unhealthy' }), false],
    ];
    for (const [h, sick] of rows) assert.deepEqual(toCure([h]), sick ? ['a'] : [], JSON.stringify(h));
  });

  test('toStart: what is missing, unless the manager owns the restart or the exit is still to be reaped', () => {
    const rows: Array<[string, HeldTask | undefined, boolean, boolean, boolean]> = [
      // name, held, managed, exited this run, started?
      ['new', undefined, false, false, true],
      ['new, managed', undefined, true, false, true],
      ['running', held('a', 'running'), false, false, false],
      ['starting', held('a', 'starting'), false, false, false],
      ['failed, unmanaged: retried in place', held('a', 'failed'), false, false, true],
      ['failed, managed: the manager replaces it', held('a', 'failed'), true, false, false],
      ['stopped (reassigned)', held('a', 'stopped'), true, false, true],
      ['draining (stop failed) and assigned again', held('a', 'draining'), false, false, true],
      ['exited during this run: next run', held('a', 'failed'), false, true, false],
      ['exit reported for a new task id', undefined, false, true, false],
    ];
    for (const [name, h, managed, exited, started] of rows) {
      const out = toStart([{ id: 'a', desiredState: 'running' }], byId(h ? [h] : []), managed, new Set(exited ? ['a'] : []));
      assert.deepEqual(out, started ? ['a'] : [], name);
    }
    assert.deepEqual(toStart([{ id: 'z', desiredState: 'running' }, { id: 'x', desiredState: 'shutdown' }, { id: 'b', desiredState: 'running' }], new Map(), false, new Set()), ['z', 'b'], 'assignment order, shutdown skipped');
  });

  test('toForget: stopped and no longer assigned at all', () => {
    const rows: Array<[Map<string, DesiredTask>, TaskState, boolean]> = [
      [want(), 'stopped', true],
      [want(['a', 'shutdown']), 'stopped', false], // still listed: its view says stopped/shutdown
      [want(), 'failed', false], // a failed task stays visible until it is stopped
      [want(), 'running', false],
    ];
    for (const [d, st, gone] of rows) assert.deepEqual(toForget(d, [held('a', st)]), gone ? ['a'] : [], `${[...d.keys()]} ${st}`);
    // A failed task that has ended (cleaned up) is forgotten like a stopped one: its view (failed, its error) is kept by the worker.
    assert.deepEqual(toForget(want(), [held('a', 'failed', { ended: true })]), ['a'], 'failed and ended, unassigned');
    assert.deepEqual(toForget(want(['a', 'shutdown']), [held('a', 'failed', { ended: true })]), [], 'failed and ended, still listed');
    assert.deepEqual(toForget(want(['a', 'running']), [held('a', 'failed', { ended: true })]), [], 'failed and ended, still assigned (managed: the manager replaces it)');
  });

  test('toDrain: running tasks that were backends', () => {
    assert.deepEqual(toDrain([
      held('a', 'running', { served: true }), held('b', 'running', { served: false }), held('c', 'running'), held('d', 'failed', { served: true }),
    ]), ['a']);
  });

  test('drainsOnExit: a task that died while it was a backend is drained before its sandbox goes', () => {
    const rows: Array<[TaskState, boolean | undefined, boolean]> = [
      ['running', true, true], // a backend somewhere: withdraw, wait for the acks, then remove the sandbox
      ['running', false, false], ['running', undefined, false], // never served (e.g. its check never passed): no LB holds it
      ['starting', true, false], ['draining', true, false], ['failed', true, false], ['stopped', true, false], ['new', undefined, false],
    ];
    for (const [state, served, v] of rows) assert.equal(drainsOnExit({ state, served }), v, `${state} served=${served}`);
  });

  test('publishedState: a backend unless a check has not passed', () => {
    const rows: Array<[Parameters<typeof publishedState>[0], string]> = [[null, 'running'], [undefined, 'running'], ['healthy', 'running'], ['starting', 'starting'], ['unhealthy', 'starting']];
    for (const [h, st] of rows) assert.equal(publishedState(h), st, String(h));
  });

  test('exit reports', () => {
    const rows: Array<[TaskState | undefined, string]> = [
      ['starting', 'during-start'], ['running', 'fail'], ['draining', 'ignore'], ['failed', 'ignore'], ['stopped', 'ignore'], ['new', 'ignore'], [undefined, 'ignore'],
    ];
    for (const [st, v] of rows) assert.equal(exitVerdict(st), v, String(st));
    assert.equal(exitError(137), 'task process exited with code 137');
    assert.equal(exitError(0), 'task process exited with code 0');
    assert.equal(exitError(null), 'task process exited');
  });

  test('exitedByPoll: running tasks the runtimes no longer list as running (by short id)', () => {
    const long = 'abcdefghijklmnopqrstu';
    const polled = [held(long, 'running'), held('gone', 'running'), held('dead', 'failed')];
    assert.deepEqual(exitedByPoll(polled, new Set([shortId(long)])), ['gone']);
    assert.equal(shortId(long), 'abcdefghijkl');
  });

  test('adoptVerdict', () => {
    const a = { desiredState: 'running' as const, attachments: 1, runtime: 'netns' as const };
    const rows: Array<[string, Parameters<typeof adoptVerdict>[0], boolean, 'netns' | 'docker', string]> = [
      ['assigned and running', a, true, 'netns', 'adopt'],
      ['not assigned', undefined, true, 'netns', 'stop'],
      ['desired shutdown', { ...a, desiredState: 'shutdown' }, true, 'netns', 'stop'],
      ['process gone', a, false, 'netns', 'stop'],
      ['no attachments', { ...a, attachments: 0 }, true, 'netns', 'stop'],
      ['another runtime holds it', a, true, 'docker', 'stop'],
      ['docker task on docker', { ...a, runtime: 'docker' }, true, 'docker', 'adopt'],
    ];
    for (const [name, x, running, kind, v] of rows) assert.equal(adoptVerdict(x, running, kind), v, name);
  });

  test('leavesNetwork: only when no other live local task uses it, never ingress', () => {
    const rows: Array<[string, string, HeldTask[], boolean]> = [
      ['last task', 'net1', [held('a', 'stopped')], true],
      ['another running task', 'net1', [held('a', 'stopped'), held('b', 'running')], false],
      ['another starting task', 'net1', [held('b', 'starting')], false],
      ['another draining task', 'net1', [held('b', 'draining')], false],
      ['another failed task does not hold it', 'net1', [held('b', 'failed')], true],
      ['another task on another network', 'net1', [held('b', 'running', { networks: ['net2'] })], true],
      ['the task itself does not hold it', 'net1', [held('a', 'running')], true],
      ['ingress never', 'ingress', [], false],
    ];
    for (const [name, net, h, leaves] of rows) assert.equal(leavesNetwork(net, 'a', h), leaves, name);
  });
});
