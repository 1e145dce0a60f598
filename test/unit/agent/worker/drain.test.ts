/**
 * Worker with fakes: a confirmed drain (the task stays up, records `draining`, until the
 * DrainWait resolves; its outcome shows in tasksView), also for a backend whose process died (its
 * sandbox stays until the acks) and start readiness (a task that exits
 * before serving is a failed start whose records never say `running`).
 * (tasksView's `drain` field lives only until the stopped task is forgotten by the next converge.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerRig } from '../../../helpers/worker-rig.js';
import { stepFor } from '../../../helpers/until.js';
import type { AssignmentInput } from '../../../../src/core/assignments.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import { DEFAULT_DRAIN_MS } from '../../../../src/agent/worker/worker.js';
import type { DrainResult, DrainWait } from '../../../../src/agent/drain/wait.js';
import type { Readiness } from '../../../../src/agent/worker/ready.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
const task = (id: string, ip: string): AssignmentInput => ({
  task: { id, name: `web.${id}`, serviceId: 's1', serviceName: 'web', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: '10.30.0.2' }],
  ports: [{ proto: 'tcp', target: 80 }],
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

type Rig = ReturnType<typeof workerRig>;

/**
 * A worker rig in a temporary directory, started until the overlay is active, handed to `body`; always stopped and
 * removed afterwards. `prepare` runs on the rig before it starts (e.g. to wrap the runtime).
 */
async function withRig(name: string, opts: { drain?: DrainWait; readiness?: (pid: number) => Promise<Readiness> }, body: (r: Rig) => Promise<void>, prepare?: (r: Rig) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `meshd-${name}-`));
  const r = workerRig(dir, { worker: opts });
  prepare?.(r);
  try {
    await r.overlay.start();
    await r.worker.start();
    await r.until('active', () => r.overlay.active);
    await body(r);
  } finally {
    await r.drive('worker stopped', r.worker.stop());
    await r.drive('overlay stopped', r.overlay.stop());
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('worker: confirmed drain and start readiness', () => {
  test('a removed task stays up and draining until every member acked; the outcome is kept', async () => {
    const drain = new ManualDrain();
    await withRig('wdrain', { drain }, async (r) => {
      r.worker.setAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]);
      await r.until('running', () => r.worker.tasksView().filter((t) => t.state === 'running').length === 2);
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      await r.until('wait asked', () => drain.calls.length === 1);
      assert.equal(drain.calls[0]!.taskId, 'a2');
      assert.deepEqual(drain.calls[0]!.networks, ['net1']);
      assert.equal(r.gossip.state('a2'), 'draining');
      await stepFor(r.clock, 3 * DEFAULT_DRAIN_MS); // far beyond the fixed drain (simulated time): still up
      assert.ok(r.runtime.tasks.has('a2'), 'not stopped before the acks');
      drain.calls[0]!.resolve({ taskId: 'a2', outcome: 'acked', ms: 321, endedAt: ENDED_AT, networks: ['net1'], acks: [{ network: 'net1', node: 'n1', ms: 5 }], pending: [] });
      await r.until('stopped', () => !r.runtime.tasks.has('a2'));
      assert.equal(r.gossip.state('a2'), undefined, 'records deleted after the stop');
    });
  });

  test('a backend whose process died: draining at once, its sandbox kept until every member acked, then stopped and its records deleted', async () => {
    const drain = new ManualDrain();
    await withRig('wdead', { drain }, async (r) => {
      r.worker.setAssignments([task('d1', '10.30.0.31')], { managed: true });
      await r.until('running', () => r.worker.tasksView().some((t) => t.id === 'd1' && t.state === 'running'));
      r.runtime.exit('d1', 137);
      // At once, before any converge: the LBs and DNS everywhere drop it; the manager sees it failed.
      assert.equal(r.gossip.state('d1'), 'draining');
      assert.equal(r.worker.tasksView().find((t) => t.id === 'd1')?.state, 'failed');
      // The wait starts with the publish, not at the next converge: acks that landed before a later
      // wait began would never wake it (worker-docker lab: 'drain confirmed' only at the 10 s timeout).
      assert.equal(drain.calls.length, 1, 'wait asked in the same turn as the publish');
      assert.equal(drain.calls[0]!.taskId, 'd1');
      await stepFor(r.clock, 3 * DEFAULT_DRAIN_MS);
      assert.ok(r.runtime.tasks.has('d1'), 'sandbox (and address) kept until the acks: a connection to it is refused, not lost');
      assert.deepEqual(r.runtime.stopped.map((x) => x.id), [], 'no stop before the acks');
      drain.calls[0]!.resolve({ taskId: 'd1', outcome: 'acked', ms: 120, endedAt: ENDED_AT, networks: ['net1'], acks: [{ network: 'net1', node: 'n1', ms: 5 }], pending: [] });
      await r.until('stopped', () => !r.runtime.tasks.has('d1'));
      assert.equal(r.gossip.state('d1'), undefined, 'records deleted after the stop');
      const v = r.worker.tasksView().find((t) => t.id === 'd1');
      assert.equal(v?.state, 'failed', 'still failed (the manager replaces it), not stopped');
      assert.match(v?.error ?? '', /exited with code 137/);
      assert.equal(drain.calls.length, 1, 'one wait');
    });
  });

  test('a process that died before it ever served is stopped at once (no LB holds it)', async () => {
    const drain = new ManualDrain();
    await withRig('wdead2', { drain }, async (r) => {
      const t = task('d2', '10.30.0.32');
      r.worker.setAssignments([{ ...t, task: { ...t.task, healthcheck: { test: ['CMD', 'false'], intervalMs: 60_000, timeoutMs: 1000, retries: 3, startPeriodMs: 60_000 } } }], { managed: true });
      await r.until('running (starting)', () => r.worker.tasksView().some((x) => x.id === 'd2' && x.state === 'running'));
      assert.equal(r.gossip.state('d2'), 'starting', 'not a backend yet');
      r.runtime.exit('d2', 1);
      await r.until('stopped', () => !r.runtime.tasks.has('d2'));
      assert.equal(drain.calls.length, 0, 'nothing to drain');
      assert.equal(r.gossip.state('d2'), undefined);
    });
  });

  test('readiness: exited before serving → failed, never published running; ready/timeout → running', async () => {
    const verdict = new Map<string, Readiness>([['b1', 'exited'], ['b2', 'ready'], ['b3', 'timeout']]);
    const byPid = new Map<number, string>();
    const countPids = (r: Rig): void => {
      const rt = r.runtime;
      const start = rt.start.bind(rt);
      rt.start = async (spec, a) => {
        const info = await start(spec, a);
        if (info.pid !== null) byPid.set(info.pid, spec.id);
        return info;
      };
    };
    await withRig('wready', { readiness: async (pid) => verdict.get(byPid.get(pid) ?? '') ?? 'ready' }, async (r) => {
      r.worker.setAssignments([task('b1', '10.30.0.21'), task('b2', '10.30.0.22'), task('b3', '10.30.0.23')]);
      await r.until('settled', () => r.worker.tasksView().every((t) => t.state === 'running' || t.state === 'failed') && r.worker.tasksView().length === 3);
      const view = Object.fromEntries(r.worker.tasksView().map((t) => [t.id, t]));
      assert.equal(view.b1!.state, 'failed');
      assert.match(view.b1!.error ?? '', /exited before serving 80\/tcp/);
      assert.equal(view.b2!.state, 'running');
      assert.equal(view.b3!.state, 'running');
      assert.ok(!r.gossip.history.some(([k, s]) => k === 'b1' && s === 'running'), 'b1 never published running');
      assert.equal(r.gossip.state('b1'), undefined);
    }, countPids);
  });
});
