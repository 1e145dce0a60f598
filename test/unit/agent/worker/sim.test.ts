/**
 * The worker on simulated time (ManualClock, no sleeps): its converge loop (ReconcileLoop) and
 * periodic retry, the fixed drain period, and exits, with a stub overlay (always settled) and
 * the fake runtime — so every wait is on the clock and the test never depends on machine speed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { flush, stepUntil } from '../../../helpers/until.js';
import { FakeRuntime } from '../../../../src/adapters/runtime/fake.js';
import { realExec } from '../../../../src/adapters/exec.js';
import { ManualClock } from '../../../../src/core/clock.js';
import type { AssignmentInput } from '../../../../src/core/assignments.js';
import { MeshError } from '../../../../src/core/errors.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import type { OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { WorkerSubsystem } from '../../../../src/agent/worker/worker.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
const task = (id: string, ip: string): AssignmentInput => ({
  task: { id, name: `web.${id}`, serviceId: 's1', serviceName: 'web', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: '10.30.0.2' }],
});

/** The overlay as the worker sees it: active and settled at once, endpoints recorded. */
function stubOverlay(sandboxesSettled: () => Promise<void> = async () => undefined): OverlaySubsystem & { locals: Set<string> } {
  const locals = new Set<string>();
  return {
    locals, prefix: 'pfx-',
    activate: async () => undefined, settled: async () => undefined, sandboxesSettled, mtuOf: () => 1450,
    defineNetwork: () => undefined, forgetNetwork: () => undefined,
    addLocal: (k: string) => void locals.add(k), removeLocal: (k: string) => void locals.delete(k),
  } as unknown as OverlaySubsystem & { locals: Set<string> };
}

async function rig(opts: { retryMs?: number; drainMs?: number; sandboxesMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-wsim-'));
  const clock = new ManualClock(1_000);
  const gossip = new FakeGossip();
  const runtime = new FakeRuntime('pfx-');
  const overlay = stubOverlay(opts.sandboxesMs ? () => new Promise<void>((res) => void clock.setTimer(opts.sandboxesMs!, res)) : undefined);
  const worker = new WorkerSubsystem({
    nodeName: 'n1', nodeIp: '10.99.1.1', dataDir: dir, prefix: 'pfx-', exec: realExec, clock, log: pino({ level: 'silent' }), gossip, overlay,
    drainMs: opts.drainMs ?? 2000, stopGraceMs: 10, retryMs: opts.retryMs ?? 5000, netnsRuntime: runtime,
  });
  await worker.start();
  await flush();
  return {
    clock, gossip, runtime, overlay, worker,
    state: (id: string) => worker.tasksView().find((t) => t.id === id)?.state,
    done: async () => {
      await worker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('worker on simulated time', () => {
  test('an assignment converges at once (no timer wait); nothing runs before it is asked', async () => {
    const r = await rig();
    try {
      const before = r.worker.converges;
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      const { ms } = await stepUntil(r.clock, 'a1 running', () => r.state('a1') === 'running', { stepMs: 1 });
      assert.ok(ms <= 1, `a kick runs on the next timer turn, not after a delay (${ms} ms)`);
      assert.equal(r.gossip.state('a1'), 'running');
      assert.equal(r.worker.converges, before + 1);
      await r.worker.idle();
    } finally {
      await r.done();
    }
  });

  test('a started task says how long its start took, by step, from the list that assigned it (issue 18: commit → publication)', async () => {
    const r = await rig({ sandboxesMs: 300 });
    try {
      assert.equal(r.worker.tasksView().length, 0);
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      await stepUntil(r.clock, 'a1 running', () => r.state('a1') === 'running', { stepMs: 10 });
      const st = r.worker.tasksView().find((t) => t.id === 'a1')!.start;
      assert.ok(st, 'a running task has its start timing');
      assert.ok(st.queuedMs !== null && st.queuedMs <= 10, `queued ${st.queuedMs} ms: the kick runs on the next timer turn`);
      assert.ok(st.sandboxesMs >= 300 && st.sandboxesMs <= 310, `the sandbox wait is its own step (${st.sandboxesMs} ms)`);
      assert.equal(st.filesMs, 0);
      assert.equal(st.runtimeMs, 0, 'the fake runtime starts at once on simulated time');
      assert.equal(st.totalMs, st.queuedMs! + st.filesMs + st.sandboxesMs + st.runtimeMs + st.readyMs, 'the steps add up to assignment → running');
      // A second list naming the same task does not restart its clock (only a task's first appearance counts).
      r.worker.setAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]);
      await stepUntil(r.clock, 'a2 running', () => r.state('a2') === 'running', { stepMs: 10 });
      assert.deepEqual(r.worker.tasksView().find((t) => t.id === 'a1')!.start, st);
      assert.ok(r.worker.tasksView().find((t) => t.id === 'a2')!.start!.sandboxesMs >= 300);
      await r.worker.idle();
    } finally {
      await r.done();
    }
  });

  test('an exit poll still listing when the worker stops judges nothing afterwards (no draining record, no failed task)', async () => {
    const r = await rig({ retryMs: 5000 });
    try {
      r.worker.setAssignments([task('p1', '10.30.0.11')]);
      await stepUntil(r.clock, 'p1 running', () => r.state('p1') === 'running', { stepMs: 1 });
      await r.worker.idle();
      let release: (v: Awaited<ReturnType<FakeRuntime['list']>>) => void = () => undefined;
      r.runtime.list = () => new Promise((res) => (release = res));
      r.runtime.tasks.delete('p1'); // its process is gone; only the poll can tell (the fake sends no exit event here)
      r.clock.advance(5000); // the poll starts and waits on list()
      await flush();
      await r.worker.stop();
      release([]);
      await flush();
      assert.equal(r.state('p1'), 'running', 'not judged after stop');
      assert.equal(r.gossip.state('p1'), 'running', 'no draining record published after stop');
    } finally {
      await r.done();
    }
  });

  test('an unmanaged failed start is retried by the periodic kick (every retryMs of simulated time since activation), not before', async () => {
    const r = await rig({ retryMs: 5000 });
    const activated = r.clock.now();
    let failures = 2;
    const start = r.runtime.start.bind(r.runtime);
    r.runtime.start = async (spec, a) => {
      if (failures-- > 0) throw new MeshError('MESHD_EXEC_FAILED', 'boom');
      return start(spec, a);
    };
    try {
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      await stepUntil(r.clock, 'first start failed', () => r.state('a1') === 'failed', { stepMs: 1 });
      r.clock.set(activated + 4_999);
      await flush();
      assert.equal(r.state('a1'), 'failed', 'not retried before retryMs');
      await stepUntil(r.clock, 'second attempt', () => failures < 1, { stepMs: 1, maxMs: 100 });
      assert.equal(r.clock.now() - activated, 5_000, 'retried on the retry period');
      const third = await stepUntil(r.clock, 'running after the third attempt', () => r.state('a1') === 'running', { stepMs: 100, maxMs: 10_000 });
      assert.ok(third.ms >= 4_900 && third.ms <= 5_000, `third attempt one retryMs later (${third.ms})`);
    } finally {
      await r.done();
    }
  });

  test('a removed task is published draining, kept drainMs of simulated time, then stopped and its records deleted', async () => {
    const r = await rig({ drainMs: 2000 });
    try {
      r.worker.setAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]);
      await stepUntil(r.clock, 'both running', () => r.state('a1') === 'running' && r.state('a2') === 'running', { stepMs: 1 });
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      await stepUntil(r.clock, 'a2 draining', () => r.gossip.state('a2') === 'draining', { stepMs: 1 });
      const t0 = r.clock.now();
      r.clock.advance(1_999);
      await flush();
      assert.ok(r.runtime.tasks.has('a2'), 'still up during the drain');
      const { ms } = await stepUntil(r.clock, 'a2 stopped', () => !r.runtime.tasks.has('a2'), { stepMs: 1, maxMs: 100 });
      assert.equal(r.clock.now() - t0, 2_000, `stopped after drainMs (${ms})`);
      assert.equal(r.gossip.state('a2'), undefined);
      assert.ok(!r.overlay.locals.has('a2 net1') && r.overlay.locals.has('a1 net1'));
    } finally {
      await r.done();
    }
  });

  test('an exit event fails the task at once and the kicked converge restarts it without waiting for the retry period', async () => {
    // drainMs 0: the dead backend's drain (next test) takes no time here, so what is measured is the kick.
    const r = await rig({ retryMs: 60_000, drainMs: 0 });
    try {
      r.worker.setAssignments([task('e1', '10.30.0.11')]);
      await stepUntil(r.clock, 'running', () => r.state('e1') === 'running', { stepMs: 1 });
      const pid = r.runtime.tasks.get('e1')!.pid;
      r.runtime.exit('e1', 1);
      assert.equal(r.state('e1'), 'failed');
      const { ms } = await stepUntil(r.clock, 'restarted', () => r.state('e1') === 'running' && r.runtime.tasks.get('e1')?.pid !== pid, { stepMs: 1 });
      assert.ok(ms <= 1, `restarted by the kick, not the 60 s retry (${ms} ms)`);
      assert.deepEqual(r.runtime.stopped.map((s) => [s.id, s.graceMs]), [['e1', 0]]);
    } finally {
      await r.done();
    }
  });

  test('an exit event of a backend: draining at once, its sandbox stopped only after drainMs of simulated time, then restarted', async () => {
    const r = await rig({ retryMs: 60_000, drainMs: 2000 });
    try {
      r.worker.setAssignments([task('e2', '10.30.0.12')]);
      await stepUntil(r.clock, 'running', () => r.state('e2') === 'running', { stepMs: 1 });
      const pid = r.runtime.tasks.get('e2')!.pid;
      const t0 = r.clock.now();
      r.runtime.exit('e2', 137);
      assert.equal(r.state('e2'), 'failed');
      assert.equal(r.gossip.state('e2'), 'draining', 'withdrawn from every LB at once');
      r.clock.advance(1_999);
      await flush();
      assert.equal(r.runtime.stopped.length, 0, 'sandbox kept during the drain');
      const { ms } = await stepUntil(r.clock, 'restarted', () => r.state('e2') === 'running' && r.runtime.tasks.get('e2')?.pid !== pid, { stepMs: 1, maxMs: 100 });
      assert.equal(r.clock.now() - t0, 2_000, `stopped and restarted right after drainMs (${ms})`);
      assert.deepEqual(r.runtime.stopped.map((s) => [s.id, s.graceMs]), [['e2', 0]]);
    } finally {
      await r.done();
    }
  });

  test('stop during a converge: the run finishes, nothing new starts, no timer is left', async () => {
    const r = await rig();
    let release!: () => void;
    const start = r.runtime.start.bind(r.runtime);
    r.runtime.start = async (spec, a) => {
      await new Promise<void>((res) => (release = res));
      return start(spec, a);
    };
    try {
      r.worker.setAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]);
      await stepUntil(r.clock, 'a1 starting', () => r.state('a1') === 'starting', { stepMs: 1 });
      const stopped = r.worker.stop();
      release();
      await flush();
      release(); // a2's start, if the run went on to it
      await stopped;
      r.worker.setAssignments([]);
      r.clock.advance(60_000);
      await flush();
      assert.equal(r.clock.pendingTimers, 0, 'no loop or retry timer after stop');
    } finally {
      await r.done();
    }
  });
});
