/**
 * Worker + health checks with fakes: a task with a check is published `starting` (on the
 * overlay, no backend, no DNS) until healthy; an unhealthy one is drained (confirmed, like a
 * scale-down) BEFORE it is stopped, and only then reported failed; a task without a check is a
 * backend at once. Netns-style runtimes are probed by the shell (exec on the policy's schedule);
 * docker-style runtimes report health themselves (onHealth).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { withWorkerRig, type WorkerRig } from '../../../helpers/worker-rig.js';
import { stepFor } from '../../../helpers/until.js';
import { FakeRuntime } from '../../../../src/adapters/runtime/fake.js';
import type { AssignmentInput } from '../../../../src/core/assignments.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import type { DrainResult, DrainWait } from '../../../../src/agent/drain/wait.js';
import type { HealthStatus } from '../../../../src/core/health/policy.js';
import type { TaskInfo, TaskSpec, Attachment } from '../../../../src/adapters/runtime/types.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
/** Failures during the (long) start period do not count; once healthy, two in a row make it unhealthy. */
const CHECK = { test: ['CMD-SHELL', 'test ! -f /tmp/unhealthy'], intervalMs: 20, timeoutMs: 200, retries: 2, startPeriodMs: 60_000 };
const task = (id: string, ip: string, healthcheck: AssignmentInput['task']['healthcheck'] | null = CHECK, runtime: 'netns' | 'docker' = 'netns'): AssignmentInput => ({
  task: { id, name: `web.${id}`, serviceId: 's1', serviceName: 'web', image: 'whoami', runtime, ...(healthcheck ? { healthcheck } : {}) },
  desiredState: 'running',
  attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: '10.30.0.2' }],
});

/** A wall-clock stamp for the drain results the test hands in (only shown, never compared). */
const ENDED_AT = 1_800_000_000_000;

/** A DrainWait the test resolves by hand. */
class ManualDrain implements DrainWait {
  readonly calls: Array<{ taskId: string; networks: readonly string[]; resolve: (r: DrainResult) => void }> = [];
  wait(taskId: string, networks: readonly string[]): Promise<DrainResult> {
    return new Promise((resolve) => this.calls.push({ taskId, networks, resolve }));
  }
}

/** A runtime that checks health itself, like docker (health from start's inspect, then events). */
class SelfCheckingRuntime extends FakeRuntime {
  private readonly healthListeners = new Set<(id: string, s: HealthStatus) => void>();
  readonly specs: TaskSpec[] = [];
  override async start(spec: TaskSpec, a: readonly Attachment[]): Promise<TaskInfo> {
    this.specs.push(spec);
    return { ...(await super.start(spec, a)), health: 'starting' };
  }
  onHealth(cb: (id: string, s: HealthStatus) => void): () => void {
    this.healthListeners.add(cb);
    return () => this.healthListeners.delete(cb);
  }
  emit(id: string, s: HealthStatus): void {
    for (const cb of this.healthListeners) cb(id, s);
  }
}

function withRig(name: string, opts: { drain?: DrainWait; dockerRuntime?: FakeRuntime }, fn: (r: WorkerRig) => Promise<void>): Promise<void> {
  return withWorkerRig(name, { worker: opts }, fn);
}

describe('worker: health checks drive the mesh', () => {
  test('probed (netns): starting → healthy → unhealthy: drained before the stop, then failed', async () => {
    const drain = new ManualDrain();
    await withRig('whealth', { drain }, async (r) => {
      let healthy = false;
      const probes: string[][] = [];
      r.runtime.onExec = (_id, argv) => {
        probes.push([...argv]);
        return { code: healthy ? 0 : 1, stdout: '', stderr: healthy ? '' : 'not yet' };
      };
      r.worker.setAssignments([task('h1', '10.30.0.11'), task('plain', '10.30.0.12', null)], { managed: true });
      await r.until('both running', () => r.worker.tasksView().filter((t) => t.state === 'running').length === 2);
      const view = () => Object.fromEntries(r.worker.tasksView().map((t) => [t.id, t]));
      assert.equal(view().plain!.health, null, 'no check: no health');
      assert.equal(r.gossip.state('plain'), 'running', 'no check: a backend at once');
      assert.equal(view().h1!.health, 'starting');
      assert.equal(r.gossip.state('h1'), 'starting', 'on the overlay, no backend yet');
      await r.until('probed a few times', () => probes.length >= 3);
      assert.deepEqual(probes[0], ['sh', '-c', 'test ! -f /tmp/unhealthy'], 'the check runs as a command in the task');
      assert.equal(view().h1!.health, 'starting', 'failures inside the start period do not count');
      healthy = true;
      await r.until('healthy', () => view().h1!.health === 'healthy');
      assert.equal(r.gossip.state('h1'), 'running', 'a backend once healthy');
      healthy = false;
      await r.until('drain asked', () => drain.calls.length === 1);
      assert.equal(drain.calls[0]!.taskId, 'h1');
      assert.equal(r.gossip.state('h1'), 'draining', 'withdrawn with the confirmed drain');
      assert.ok(r.runtime.tasks.has('h1'), 'not stopped before the drain is confirmed');
      assert.equal(view().h1!.state, 'draining', 'reported draining (still running for the manager), not failed yet');
      drain.calls[0]!.resolve({ taskId: 'h1', outcome: 'acked', ms: 5, endedAt: ENDED_AT, networks: ['net1'], acks: [], pending: [] });
      await r.until('stopped', () => !r.runtime.tasks.has('h1'));
      await r.until('failed', () => view().h1!.state === 'failed');
      assert.match(view().h1!.error ?? '', /^unhealthy: health check failed 2 times \(last: exit 1: not yet\)$/);
      assert.equal(r.gossip.state('h1'), undefined, 'records deleted');
      const n = probes.length;
      await stepFor(r.clock, 1_000); // 50 probe intervals of simulated time
      assert.equal(probes.length, n, 'no probe after the stop');
      assert.equal(view().plain!.state, 'running', 'the task without a check is untouched');
      const states = r.gossip.history.filter(([k]) => k === 'h1').map(([, s]) => s);
      assert.deepEqual([...new Set(states)], ['starting', 'running', 'draining'], 'published in this order');
    });
  });

  test('never healthy → unhealthy: stopped without a drain (it was never a backend), failed', async () => {
    const drain = new ManualDrain();
    await withRig('whealth2', { drain }, async (r) => {
      r.runtime.onExec = () => ({ code: 1, stdout: '', stderr: '' });
      r.worker.setAssignments([task('h2', '10.30.0.13', { ...CHECK, startPeriodMs: 0 })], { managed: true });
      await r.until('failed', () => r.worker.tasksView()[0]?.state === 'failed');
      assert.equal(drain.calls.length, 0);
      assert.ok(!r.gossip.history.some(([, s]) => s === 'running'), 'never published as a backend');
    });
  });

  test('self-checking runtime (docker): health from the start, then from its events; --no-healthcheck is passed on', async () => {
    const docker = new SelfCheckingRuntime('pfx-');
    const drain = new ManualDrain();
    await withRig('whealth3', { drain, dockerRuntime: docker }, async (r) => {
      r.worker.setAssignments([task('d1', '10.30.0.14', null, 'docker'), task('d2', '10.30.0.15', { disable: true }, 'docker')], { managed: true });
      await r.until('running', () => r.worker.tasksView().filter((t) => t.state === 'running').length === 2);
      assert.equal(r.gossip.state('d1'), 'starting', 'the image\'s own check (reported by the runtime) holds it back');
      assert.deepEqual(docker.specs.find((s) => s.id === 'd2')?.healthcheck, { disable: true });
      docker.emit('d1', 'healthy');
      await r.until('healthy', () => r.gossip.state('d1') === 'running');
      docker.emit('d1', 'unhealthy');
      await r.until('drain asked', () => drain.calls.length === 1);
      assert.equal(r.gossip.state('d1'), 'draining');
      drain.calls[0]!.resolve({ taskId: 'd1', outcome: 'acked', ms: 5, endedAt: ENDED_AT, networks: ['net1'], acks: [], pending: [] });
      await r.until('failed', () => r.worker.tasksView().find((t) => t.id === 'd1')?.state === 'failed');
      assert.match(r.worker.tasksView().find((t) => t.id === 'd1')!.error ?? '', /unhealthy/);
    });
  });
});
