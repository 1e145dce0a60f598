/**
 * OverlayService on simulated time (ManualClock, no sleeps): the first reconcile at start, bursts
 * coalesced by debounceMs, back-off on failure that events do not bypass, a resync resyncMs after
 * the last success, settle() under churn, and the fake kernel behind a real OverlayReconciler.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/core/clock.js';
import { MeshError } from '../../../src/core/errors.js';
import type { OverlayNetwork } from '../../../src/core/overlay/model.js';
import type { ReconcileInput } from '../../../src/core/overlay/state.js';
import { OverlayService, type ReconcileReason } from '../../../src/adapters/netlink/service.js';
import { OverlayReconciler, type ReconcileReport } from '../../../src/adapters/netlink/overlay.js';
import { FakeOverlayKernel } from '../../../src/adapters/netlink/fake.js';
import { FakeVxlanGuard } from '../../helpers/fake-vxlan-guard.js';

const timers = { debounceMs: 50, resyncMs: 10_000, retryMinMs: 500, retryMaxMs: 4000 };
const A: OverlayNetwork = { id: 'aaaa', name: 'a', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };

/** Lets promise callbacks and the service's setImmediate wake-ups run (no simulated time passes). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A reconciler that records each call (time, input) and fails while `fail` is set; `hold` keeps the next calls in flight. */
class Recorder {
  readonly calls: Array<{ at: number; input: ReconcileInput; fresh: boolean | undefined }> = [];
  fail = false;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  constructor(private readonly clock: ManualClock) {}
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  async reconcile(input: ReconcileInput, opts?: { fresh?: boolean }): Promise<ReconcileReport> {
    this.calls.push({ at: this.clock.now(), input, fresh: opts?.fresh });
    if (this.gate) await this.gate;
    if (this.fail) throw new MeshError('MESHD_INTERNAL', 'boom');
    return { ops: 0, processes: 0, plan: '' };
  }
  async status(): Promise<never> {
    throw new Error('unused');
  }
}

function rig() {
  const clock = new ManualClock(1000);
  const rec = new Recorder(clock);
  const reasons: ReconcileReason[] = [];
  const errors: MeshError[] = [];
  const svc = new OverlayService({ reconciler: rec, clock, timers, onReconciled: (_r, why) => reasons.push(why), onError: (e) => errors.push(e) });
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  return { clock, rec, svc, reasons, errors, step, at: () => rec.calls.map((c) => c.at - 1000) };
}

const member = (i: number) => ({ type: 'members' as const, underlayIps: [`192.168.1.${i}`] });

describe('OverlayService (ManualClock)', () => {
  test('events before start are only recorded; start reconciles at once with all of them', async () => {
    const r = rig();
    r.svc.handle({ type: 'network-define', network: A });
    r.svc.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    await r.step(1000);
    assert.equal(r.rec.calls.length, 0, 'not started: nothing runs');
    r.svc.start();
    await r.step(0);
    assert.deepEqual(r.at(), [1000]);
    assert.deepEqual(r.rec.calls[0]!.input.networks.map((n) => n.id), ['aaaa']);
    assert.deepEqual(r.reasons, ['resync']);
    r.svc.stop();
  });

  test('a burst of events is coalesced into one reconcile debounceMs after the first', async () => {
    const r = rig();
    r.svc.start();
    await r.step(0);
    for (let i = 1; i <= 5; i++) {
      r.svc.handle(member(i)); // at 0, 10, 20, 30, 40
      await r.step(i < 5 ? 10 : 9);
    }
    assert.equal(r.rec.calls.length, 1, 'at 49: not yet');
    await r.step(1);
    assert.equal(r.rec.calls.length, 2, 'at 50: due since the first event; later ones did not postpone it');
    assert.deepEqual(r.rec.calls[1]!.input.members, ['192.168.1.5'], 'the run takes the input as it is when it starts');
    assert.deepEqual(r.reasons, ['resync', 'event']);
    r.svc.stop();
  });

  test('events during a run are carried by one more run right after it, never two at once', async () => {
    const r = rig();
    r.svc.start();
    r.rec.hold();
    await r.step(0);
    assert.equal(r.rec.calls.length, 1);
    for (let i = 1; i <= 3; i++) r.svc.handle(member(i));
    await r.step(500);
    assert.equal(r.rec.calls.length, 1, 'still in flight');
    r.rec.release();
    await flush(); // the run ends; the loop arms its timer for the next one (already due)
    await r.step(0);
    assert.equal(r.rec.calls.length, 2, 'due already (its debounce passed during the run)');
    assert.deepEqual(r.rec.calls[1]!.input.members, ['192.168.1.3']);
    r.svc.stop();
  });

  test('failure: back-off doubles from retryMinMs to retryMaxMs; events do not bypass it; success resets', async () => {
    const r = rig();
    r.rec.fail = true;
    r.svc.start();
    await r.step(0);
    const rows: Array<[number, number]> = [[499, 1], [1, 2], [999, 2], [1, 3], [2000, 4], [4000, 5], [4000, 6]];
    for (const [ms, calls] of rows) {
      if (calls === 2) r.svc.handle(member(9)); // an event during back-off rides on the retry
      await r.step(ms);
      assert.equal(r.rec.calls.length, calls, `after +${ms} ms`);
    }
    assert.deepEqual(r.at(), [0, 500, 1500, 3500, 7500, 11_500]);
    assert.equal(r.errors.length, 6);
    assert.equal(r.svc.consecutiveFailures, 6);
    assert.deepEqual(r.rec.calls[1]!.input.members, ['192.168.1.9'], 'the event rode on the retry');
    r.rec.fail = false;
    await r.step(4000);
    assert.equal(r.svc.consecutiveFailures, 0);
    assert.deepEqual(r.reasons, ['retry']);
    // After a success an event is debounced again.
    r.svc.handle(member(1));
    await r.step(50);
    assert.equal(r.rec.calls.length, 8);
    assert.deepEqual(r.reasons, ['retry', 'event']);
    r.svc.stop();
  });

  test('a resync runs resyncMs after the last successful reconcile, without events', async () => {
    const r = rig();
    r.svc.start();
    await r.step(0);
    await r.step(5000);
    r.svc.handle(member(1));
    await r.step(50); // success at 5050: the resync moves to 15 050
    await r.step(9_999);
    assert.equal(r.rec.calls.length, 2);
    await r.step(1);
    assert.deepEqual(r.at(), [0, 5050, 15_050]);
    assert.deepEqual(r.reasons, ['resync', 'event', 'resync']);
    r.svc.stop();
    await r.step(20_000);
    assert.equal(r.rec.calls.length, 3, 'nothing after stop');
    assert.equal(r.clock.pendingTimers, 0);
  });

  test('settle() returns once a reconcile holding its events finished, also under steady churn', async () => {
    const r = rig();
    r.svc.start();
    await r.step(0);
    r.rec.hold();
    r.svc.handle(member(1));
    let settled = false;
    const p = r.svc.settle(150).then(() => (settled = true));
    await r.step(50); // the run with member 1 starts and is held
    for (let i = 2; i < 6; i++) {
      r.svc.handle(member(i)); // churn keeps marking
      await r.step(10);
    }
    assert.equal(settled, false);
    r.rec.release();
    await r.step(0);
    await p;
    assert.equal(settled, true, 'returned after the run holding member 1, not after the churn');
    assert.equal(r.rec.calls.length, 2);
    await r.step(10);
    assert.equal(r.rec.calls.length, 3, 'the churn is carried by one more run, 50 ms after its first event');
    assert.deepEqual(r.rec.calls[2]!.input.members, ['192.168.1.5']);
    r.svc.stop();
  });

  test('settle() does not wait for a retry further away than withinMs', async () => {
    const r = rig();
    r.rec.fail = true;
    r.svc.start();
    await r.step(0);
    r.svc.handle(member(1));
    await r.svc.settle(150); // the retry is 500 ms away: returns at once
    assert.equal(r.rec.calls.length, 1);
    r.svc.stop();
  });

  test('with the fake kernel: events program it; a guard failure goes to onError, changes nothing, and is retried', async () => {
    const clock = new ManualClock();
    const kernel = new FakeOverlayKernel();
    const guard = new FakeVxlanGuard();
    const errors: MeshError[] = [];
    const svc = new OverlayService({
      reconciler: new OverlayReconciler({ prefix: 'm-', hostNs: null, underlayIp: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 }, kernel, guard),
      clock, timers, onError: (e) => errors.push(e),
    });
    const step = async (ms: number): Promise<void> => {
      clock.advance(ms);
      await flush();
    };
    svc.start();
    svc.handle({ type: 'network-define', network: A });
    svc.handle({ type: 'members', underlayIps: ['192.168.1.1', '192.168.1.2'] });
    svc.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    svc.handle({ type: 'remote-add', key: 'k', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', nodeIp: '192.168.1.2' } });
    await step(0);
    assert.deepEqual(kernel.state.sandboxes.map((s) => [s.ns, s.fdb.length]), [['m-ov-aaaa', 1]]);
    guard.failWith = 'boom';
    svc.handle({ type: 'remote-remove', key: 'k' });
    await step(50);
    assert.equal(errors[0]?.code, 'MESHD_NOT_READY');
    assert.equal(kernel.state.sandboxes[0]!.fdb.length, 1, 'fail closed: nothing changed');
    guard.failWith = null;
    await step(500);
    assert.equal(kernel.state.sandboxes[0]!.fdb.length, 0);
    assert.equal(svc.lastError, null);
    assert.deepEqual((await svc.status()).drift, []);
    svc.stop();
  });

  test('sandboxesReady: true once the sandbox is in the kernel, false before, while failing, and while a reconcile in flight does not host it', async () => {
    const clock = new ManualClock();
    const kernel = new FakeOverlayKernel();
    const guard = new FakeVxlanGuard();
    const rec = new OverlayReconciler({ prefix: 'm-', hostNs: null, underlayIp: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 }, kernel, guard);
    let hold: Promise<void> | null = null;
    let open = (): void => undefined;
    const svc = new OverlayService({
      reconciler: { reconcile: async (i, o) => { if (hold) await hold; return rec.reconcile(i, o); }, status: (i) => rec.status(i) },
      clock, timers: { ...timers, maxDuty: 0.25, maxPaceMs: 250 }, onError: () => undefined,
    });
    const step = async (ms: number): Promise<void> => {
      clock.advance(ms);
      await flush();
    };
    const a = [{ network: 'aaaa', ns: 'm-ov-aaaa' }];
    svc.start();
    svc.handle({ type: 'network-define', network: A });
    svc.handle({ type: 'members', underlayIps: ['192.168.1.1', '192.168.1.2'] });
    assert.equal(svc.sandboxesReady(a), false, 'nothing reconciled yet');
    svc.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    await step(0);
    assert.equal(svc.sandboxesReady(a), true);
    // Churn of remote entries keeps a paced reconcile due: a start does not need it.
    for (let i = 0; i < 5; i++) svc.handle({ type: 'remote-add', key: `k${i}`, endpoint: { network: 'aaaa', ip: `10.0.1.${10 + i}`, mac: `02:42:0a:00:01:${10 + i}`, nodeIp: '192.168.1.2' } });
    assert.equal(svc.sandboxesReady(a), true, 'remote entries pending: the sandbox is there all the same');
    // The last task leaves and a reconcile that removes the sandbox is in flight when a new task arrives: not ready.
    svc.handle({ type: 'local-remove', taskId: 't1' });
    hold = new Promise<void>((r) => (open = r));
    await step(300);
    svc.handle({ type: 'local-add', taskId: 't2', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03' } });
    assert.equal(svc.sandboxesReady(a), false, 'the run in flight (input without the network) removes the sandbox');
    hold = null;
    open();
    await flush();
    assert.equal(kernel.state.sandboxes.length, 0, 'removed by the run that was in flight');
    assert.equal(svc.sandboxesReady(a), false, 'gone in the last report');
    await step(300);
    assert.equal(kernel.state.sandboxes.length, 1);
    assert.equal(svc.sandboxesReady(a), true, 'created again by the next run');
    // A failed reconcile: not ready (the kernel state is unknown), whatever the last report said.
    guard.failWith = 'boom';
    svc.handle({ type: 'network-attach', networkId: 'aaaa' });
    await step(300);
    assert.equal(svc.sandboxesReady(a), false);
    svc.stop();
  });

  test('a reconcile reads the kernel unless only remote endpoints or members changed since the last one', async () => {
    const r = rig();
    r.svc.start();
    await r.step(0);
    r.svc.handle({ type: 'remote-add', key: 'k', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', nodeIp: '192.168.1.2' } });
    await r.step(50);
    r.svc.handle(member(2));
    await r.step(50);
    r.svc.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    r.svc.handle({ type: 'remote-remove', key: 'k' });
    await r.step(50);
    r.svc.handle({ type: 'remote-remove', key: 'k' });
    r.svc.readBack(); // a manual reconcile (someone changed the kernel by hand)
    await r.step(50);
    r.svc.handle({ type: 'network-define', network: A });
    await r.step(50);
    r.svc.handle(member(3));
    await r.step(50);
    await r.step(10_000); // the periodic resync
    assert.deepEqual(r.rec.calls.map((c) => c.fresh), [true, false, false, true, true, true, false, true],
      'start; remote; members; local (+remote); manual; network; members; resync');
    r.rec.fail = true;
    r.svc.handle(member(4));
    await r.step(50);
    r.rec.fail = false;
    await r.step(500);
    assert.deepEqual(r.rec.calls.slice(-2).map((c) => c.fresh), [false, true], 'a retry after a failure reads');
    r.svc.stop();
  });

  test('paced under sustained churn (maxDuty): after a reconcile of d ms the next waits 3d; a lone change is not delayed', async () => {
    const clock = new ManualClock(1000);
    const rec = new Recorder(clock);
    const svc = new OverlayService({ reconciler: rec, clock, timers: { ...timers, maxDuty: 0.25, maxPaceMs: 250 }, onError: () => {} });
    const step = async (ms: number): Promise<void> => {
      clock.advance(ms);
      await flush();
    };
    svc.start();
    await step(0);
    await step(5000);
    svc.handle(member(2));
    await step(50);
    assert.equal(rec.calls.length, 2, 'a lone change: debounceMs after it');
    rec.hold();
    svc.handle(member(3));
    await step(50); // starts, takes 40 ms
    await step(40);
    rec.release();
    await flush();
    svc.handle(member(4));
    await step(50);
    assert.equal(rec.calls.length, 3, 'paced: not yet (3 × 40 ms after the last one ended)');
    await step(70);
    assert.equal(rec.calls.length, 4);
    assert.deepEqual(rec.calls.map((c) => c.at - 1000), [0, 5050, 5100, 5260]);
    // settle() waits for a reconcile held back by pacing (it returns early only for a retry's back-off): the
    // worker attaches a task right after it, to the sandbox that reconcile creates.
    rec.hold();
    svc.handle({ type: 'network-define', network: A });
    await step(50); // starts at 5310, takes 100 ms → the next is paced to ≥ 5410 + 250
    await step(100);
    rec.release();
    await flush();
    svc.handle({ type: 'local-add', taskId: 't9', endpoint: { network: 'aaaa', ip: '10.0.1.9', mac: '02:42:0a:00:01:09' } });
    let settled = false;
    void svc.settle(150).then(() => (settled = true));
    await step(150);
    assert.equal(settled, false, 'the paced reconcile (due in 250 ms) is waited for');
    await step(100);
    assert.equal(rec.calls.length, 6);
    await flush();
    assert.equal(settled, true);
    svc.stop();
  });
});
