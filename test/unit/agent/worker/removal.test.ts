/**
 * The removal of tasks the manager takes away (agent/worker/removal.ts) over the fake runtime: a
 * task that already ended on this node (a failed health check drained, stopped and failed it)
 * keeps how it ended when the manager then shuts it down — no second stop, its state and error
 * unchanged in the node's view, kept after it is forgotten (endedView); a stop that fails is
 * still retried; a running task shut down ends `stopped` without an error, as before. A task that
 * failed (exit, failed start, failed check) and whose cleanup stop failed too keeps its first
 * error through the retried stops: `<first>; cleanup stop failed: …` while the stop fails, the
 * first error alone once it succeeds — never `stop: …` alone, never cleared.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { withWorkerRig } from '../../../helpers/worker-rig.js';
import { FakeRuntime } from '../../../../src/adapters/runtime/fake.js';
import type { AssignmentInput } from '../../../../src/core/assignments.js';
import { MeshError } from '../../../../src/core/errors.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
/** Unhealthy at the second failed probe, no start period. */
const CHECK = { test: ['CMD-SHELL', 'false'], intervalMs: 20, timeoutMs: 200, retries: 2, startPeriodMs: 0 };
const task = (id: string, ip: string, o: { check?: boolean; desiredState?: 'running' | 'shutdown' } = {}): AssignmentInput => ({
  task: { id, name: `web.${id}`, serviceId: 's1', serviceName: 'web', image: 'whoami', ...(o.check ? { healthcheck: CHECK } : {}) },
  desiredState: o.desiredState ?? 'running',
  attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: '10.30.0.2' }],
});

/** A fake runtime whose next `failStops` stops throw (a daemon that did not answer); counts every attempt. */
class FlakyStopRuntime extends FakeRuntime {
  failStops = 0;
  /** The next `failStarts` starts throw (an image that is missing). */
  failStarts = 0;
  readonly attempts: string[] = [];
  override async stop(taskId: string, graceMs: number, signal?: string): Promise<void> {
    this.attempts.push(taskId);
    if (this.failStops > 0) {
      this.failStops--;
      throw new MeshError('MESHD_EXEC_FAILED', 'runtime did not answer');
    }
    return super.stop(taskId, graceMs, signal);
  }
  override async start(...args: Parameters<FakeRuntime['start']>): ReturnType<FakeRuntime['start']> {
    if (this.failStarts > 0) {
      this.failStarts--;
      throw new MeshError('MESHD_EXEC_FAILED', 'image not found');
    }
    return super.start(...args);
  }
}

describe('worker removal: a task that already ended keeps how it ended', () => {
  test('failed health check, then the manager shuts it down and drops it: stays failed with its error, stopped once', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove1', { runtime, worker: { drainMs: 100 } }, async (r) => {
      runtime.onExec = () => ({ code: 1, stdout: '', stderr: 'down' });
      r.worker.setAssignments([task('f1', '10.30.0.11', { check: true })], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 'f1');
      await r.until('failed by its check', () => view()?.state === 'failed');
      const error = view()!.error;
      assert.match(error ?? '', /^unhealthy: health check failed 2 times/);
      assert.deepEqual(runtime.attempts, ['f1'], 'stopped by the removal of the sick task');
      // The manager recorded the failure and shuts the task down (still listed, desired shutdown).
      r.worker.setAssignments([task('f1', '10.30.0.11', { check: true, desiredState: 'shutdown' })], { managed: true });
      await r.drive('converged', r.worker.idle());
      assert.equal(view()?.state, 'failed', 'not rewritten stopped');
      assert.equal(view()?.error, error, 'its error kept');
      assert.equal(view()?.desiredState, 'shutdown');
      // Then drops it: forgotten, and how it ended stays readable by id.
      r.worker.setAssignments([], { managed: true });
      await r.until('forgotten', () => view() === undefined);
      assert.equal(r.worker.endedView('f1')?.state, 'failed');
      assert.equal(r.worker.endedView('f1')?.error, error);
      assert.deepEqual(runtime.attempts, ['f1'], 'runtime.stop called once in all');
      assert.equal(r.gossip.record('net1', 'f1'), undefined, 'its records are gone');
    });
  });

  test('a stop that fails is retried: failed with `stop: …` meanwhile, then stopped without an error', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove2', { runtime, worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('s1', '10.30.0.12')], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 's1');
      await r.until('running', () => view()?.state === 'running');
      runtime.failStops = 1;
      r.worker.setAssignments([task('s1', '10.30.0.12', { desiredState: 'shutdown' })], { managed: true });
      await r.until('stop failed', () => view()?.state === 'failed');
      assert.equal(view()?.error, 'stop: runtime did not answer');
      assert.ok(runtime.tasks.has('s1'), 'still there: the stop failed');
      r.worker.kick(); // the periodic retry (retryMs)
      await r.until('stopped on the retry', () => view()?.state === 'stopped');
      assert.equal(view()?.error, null);
      assert.ok(!runtime.tasks.has('s1'));
      assert.deepEqual(runtime.attempts, ['s1', 's1'], 'stopped again after the failure, then never more');
      r.worker.kick();
      await r.drive('converged', r.worker.idle());
      assert.deepEqual(runtime.attempts, ['s1', 's1']);
    });
  });

  test('a running task shut down: stopped, error null, stopped once (unchanged)', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove3', { runtime, worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('r1', '10.30.0.13')], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 'r1');
      await r.until('running', () => view()?.state === 'running');
      r.worker.setAssignments([task('r1', '10.30.0.13', { desiredState: 'shutdown' })], { managed: true });
      await r.until('stopped', () => view()?.state === 'stopped');
      assert.equal(view()?.error, null);
      r.worker.setAssignments([], { managed: true });
      await r.until('forgotten', () => view() === undefined);
      assert.equal(r.worker.endedView('r1')?.state, 'stopped');
      assert.equal(r.worker.endedView('r1')?.error, null);
      assert.deepEqual(runtime.attempts, ['r1']);
    });
  });

  test('exited, its cleanup stop failed, the manager shuts it down: stays failed with the exit error while the stop is retried', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove4', { runtime, worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('e1', '10.30.0.14')], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 'e1');
      await r.until('running', () => view()?.state === 'running');
      runtime.failStops = 2; // the worker's cleanup after the exit, then the removal's first try
      runtime.exit('e1', 3);
      await r.until('cleanup tried', () => runtime.attempts.length === 1);
      await r.drive('converged', r.worker.idle());
      const first = 'task process exited with code 3';
      assert.equal(view()?.state, 'failed');
      assert.equal(view()?.error, first);
      assert.ok(runtime.tasks.has('e1'), 'still there: its cleanup stop failed');
      r.worker.setAssignments([task('e1', '10.30.0.14', { desiredState: 'shutdown' })], { managed: true });
      await r.until('stop retried by the removal', () => runtime.attempts.length === 2);
      await r.drive('converged', r.worker.idle());
      assert.equal(view()?.state, 'failed');
      assert.equal(view()?.error, `${first}; cleanup stop failed: runtime did not answer`, 'the first error, then the stop failure');
      r.worker.kick(); // the periodic retry (retryMs)
      await r.until('stopped on the retry', () => !runtime.tasks.has('e1'));
      await r.drive('converged', r.worker.idle());
      assert.equal(view()?.state, 'failed', 'not rewritten stopped');
      assert.equal(view()?.error, first, 'the first error alone once the stop succeeded');
      r.worker.kick();
      await r.drive('converged', r.worker.idle());
      assert.deepEqual(runtime.attempts, ['e1', 'e1', 'e1'], 'ended: never stopped again');
      r.worker.setAssignments([], { managed: true });
      await r.until('forgotten', () => view() === undefined);
      assert.equal(r.worker.endedView('e1')?.state, 'failed');
      assert.equal(r.worker.endedView('e1')?.error, first);
    });
  });

  test('failed start whose cleanup stop failed, then shut down: the retried stop succeeds, ended failed with the start error', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove5', { runtime, worker: { drainMs: 100 } }, async (r) => {
      runtime.failStarts = 1;
      runtime.failStops = 1;
      r.worker.setAssignments([task('b1', '10.30.0.15')], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 'b1');
      await r.until('start failed', () => view()?.state === 'failed' && runtime.attempts.length === 1);
      await r.drive('converged', r.worker.idle());
      const first = view()!.error;
      assert.equal(first, 'image not found');
      r.worker.setAssignments([task('b1', '10.30.0.15', { desiredState: 'shutdown' })], { managed: true });
      await r.until('stop retried', () => runtime.attempts.length === 2);
      await r.drive('converged', r.worker.idle());
      assert.equal(view()?.state, 'failed', 'not rewritten stopped');
      assert.equal(view()?.error, first, 'its start error kept');
      r.worker.kick();
      await r.drive('converged', r.worker.idle());
      assert.deepEqual(runtime.attempts, ['b1', 'b1'], 'ended: never stopped again');
    });
  });

  test('failed check whose stop failed: `unhealthy: …; cleanup stop failed: …`, then the unhealthy error alone once shut down and stopped', async () => {
    const runtime = new FlakyStopRuntime('pfx-');
    await withWorkerRig('wremove6', { runtime, worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('u1', '10.30.0.16', { check: true })], { managed: true });
      const view = () => r.worker.tasksView().find((t) => t.id === 'u1');
      await r.until('running', () => view()?.state === 'running');
      runtime.failStops = 1;
      runtime.onExec = () => ({ code: 1, stdout: '', stderr: 'down' });
      await r.until('failed by its check', () => view()?.state === 'failed');
      await r.drive('converged', r.worker.idle());
      const error = view()!.error ?? '';
      const m = /^(unhealthy: health check failed 2 times.*); cleanup stop failed: runtime did not answer$/.exec(error);
      assert.ok(m, `the check's error, then the stop failure: ${error}`);
      const first = m[1]!;
      assert.ok(runtime.tasks.has('u1'), 'still there: the stop failed');
      r.worker.setAssignments([task('u1', '10.30.0.16', { check: true, desiredState: 'shutdown' })], { managed: true });
      await r.until('stopped on the retry', () => !runtime.tasks.has('u1'));
      await r.drive('converged', r.worker.idle());
      assert.equal(view()?.state, 'failed', 'not rewritten stopped');
      assert.equal(view()?.error, first, 'the unhealthy error kept');
      assert.deepEqual(runtime.attempts, ['u1', 'u1']);
    });
  });
});
