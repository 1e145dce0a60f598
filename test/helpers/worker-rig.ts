/**
 * One agent's worker + overlay on its own simulated clock, over fakes (runtime, overlay kernel,
 * VXLAN guard, gossip) — the rig of the worker's unit tests (worker, drain, health). A restarted
 * agent is a new rig over the same runtime, kernel and data dir. `until` steps the clock at most
 * 10 s: below the 60 s retry and resync periods, so what a test sees was done by a kick, an event or
 * a grace timer, never by a periodic pass.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FakeOverlayKernel } from '../../src/adapters/netlink/fake.js';
import { FakeRuntime } from '../../src/adapters/runtime/fake.js';
import { realExec } from '../../src/adapters/exec.js';
import { ManualClock } from '../../src/core/clock.js';
import { OverlaySubsystem } from '../../src/agent/overlay/overlay.js';
import { WorkerSubsystem, type WorkerOptions } from '../../src/agent/worker/worker.js';
import { FakeGossip } from './fake-gossip.js';
import { FakeVxlanGuard } from './fake-vxlan-guard.js';
import { stepAwait, stepUntil } from './until.js';

export interface WorkerRigOptions {
  runtime?: FakeRuntime;
  kernel?: FakeOverlayKernel;
  gossip?: FakeGossip;
  /** Worker options over the rig's defaults (drainMs, drain, readiness, dockerRuntime, …). */
  worker?: Partial<WorkerOptions>;
}

export function workerRig(dataDir: string, o: WorkerRigOptions = {}) {
  const log = pino({ level: 'silent' });
  const clock = new ManualClock(1_000);
  const runtime = o.runtime ?? new FakeRuntime('pfx-');
  const kernel = o.kernel ?? new FakeOverlayKernel();
  const gossip = o.gossip ?? new FakeGossip();
  const overlay = new OverlaySubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'pfx-', gossip, clock, log, exec: realExec, underlayMtu: 1500,
    syncTimeoutMs: 0, deadGraceMs: 300, kernel, guard: new FakeVxlanGuard(),
    timers: { debounceMs: 5, resyncMs: 60_000, retryMinMs: 50, retryMaxMs: 200 },
  });
  const worker = new WorkerSubsystem({
    nodeName: 'n1', nodeIp: '10.99.1.1', dataDir, prefix: 'pfx-', exec: realExec, clock, log, gossip, overlay,
    stopGraceMs: 10, retryMs: 60_000, netnsRuntime: runtime, ...o.worker,
  });
  const until = async (what: string, fn: () => unknown, maxMs = 10_000): Promise<void> => void (await stepUntil(clock, what, fn, { maxMs }));
  /** Awaits a call that waits on the overlay's or the worker's timers, stepping the clock. */
  const drive = async <T>(what: string, p: Promise<T>): Promise<T> => (await stepAwait(clock, what, p, { maxMs: 10_000 })).value;
  return { overlay, worker, runtime, kernel, gossip, clock, until, drive };
}

export type WorkerRig = ReturnType<typeof workerRig>;

/** A rig in a fresh data dir, started (overlay active), handed to `fn`, then stopped and removed. */
export async function withWorkerRig(name: string, o: WorkerRigOptions, fn: (r: WorkerRig) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `meshd-${name}-`));
  const r = workerRig(dir, o);
  try {
    await r.overlay.start();
    await r.worker.start();
    await r.until('active', () => r.overlay.active);
    await fn(r);
  } finally {
    await r.drive('worker stopped', r.worker.stop());
    await r.drive('overlay stopped', r.overlay.stop());
    rmSync(dir, { recursive: true, force: true });
  }
}
