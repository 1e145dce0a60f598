import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OverlayState, retryDelayMs } from '../../../src/core/overlay/state.js';
import type { OverlayNetwork } from '../../../src/core/overlay/model.js';
import { OverlayService } from '../../../src/adapters/netlink/service.js';
import { OverlayReconciler } from '../../../src/adapters/netlink/overlay.js';
import { FakeOverlayKernel } from '../../../src/adapters/netlink/fake.js';
import { FakeVxlanGuard } from '../../helpers/fake-vxlan-guard.js';
import type { MeshError } from '../../../src/core/errors.js';

const timers = { debounceMs: 50, resyncMs: 10_000, retryMinMs: 500, retryMaxMs: 4000 };
const A: OverlayNetwork = { id: 'aaaa', name: 'a', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const B: OverlayNetwork = { id: 'bbbb', name: 'b', vni: 4097, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };

describe('retryDelayMs', () => {
  const cases: [number, number][] = [[0, 500], [1, 500], [2, 1000], [3, 2000], [4, 4000], [5, 4000], [100, 4000]];
  for (const [attempt, want] of cases) test(`attempt ${attempt} → ${want} ms`, () => assert.equal(retryDelayMs(attempt, 500, 4000), want));
});

describe('OverlayState', () => {
  test('reconciles at start, then coalesces a burst of events into one action', () => {
    const s = new OverlayState(0, timers);
    assert.equal(s.nextDeadline(), 0);
    s.tick(0);
    assert.deepEqual(s.drain().map((a) => a.reason), ['resync']);
    assert.equal(s.nextDeadline(), null, 'nothing while in flight');
    s.reconciled(true, 5);
    s.handle({ type: 'network-define', network: A }, 10);
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } }, 20);
    s.handle({ type: 'remote-add', key: 'n2/t2', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', nodeIp: '192.168.1.2' } }, 30);
    s.handle({ type: 'members', underlayIps: ['192.168.1.2', '192.168.1.1', '192.168.1.2'] }, 40);
    assert.equal(s.nextDeadline(), 60);
    s.tick(59);
    assert.deepEqual(s.drain(), []);
    s.tick(60);
    const [a] = s.drain();
    assert.equal(a?.reason, 'event');
    assert.deepEqual(a?.input.networks.map((n) => n.id), ['aaaa']);
    assert.deepEqual(a?.input.members, ['192.168.1.1', '192.168.1.2']);
    assert.equal(a?.input.remote.length, 1);
  });
  test('lazy hosting: a network is hosted while it has a local endpoint or is attached', () => {
    const s = new OverlayState(0, timers);
    s.handle({ type: 'network-define', network: A }, 0);
    s.handle({ type: 'network-define', network: B }, 0);
    assert.deepEqual(s.hosted(), []);
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'bbbb', ip: '10.0.2.2', mac: '02:42:0a:00:02:02' } }, 0);
    s.handle({ type: 'network-attach', networkId: 'aaaa' }, 0);
    assert.deepEqual(s.hosted().map((n) => n.id), ['aaaa', 'bbbb']);
    s.handle({ type: 'local-remove', taskId: 't1' }, 0);
    s.handle({ type: 'network-detach', networkId: 'aaaa' }, 0);
    assert.deepEqual(s.hosted(), []);
  });
  test('forgetting a network drops its remote endpoints: defined anew, it never programs stale ones (chaos seed 13)', () => {
    // The node's last task on A left (leave the gossip network, forget the overlay network); while it was
    // away, gossip told it nothing about A, so the remotes it held are unknown-stale. A task lands here
    // again: only what gossip sends from now on may be programmed.
    const s = new OverlayState(0, timers);
    s.handle({ type: 'network-define', network: A }, 0);
    s.handle({ type: 'network-define', network: B }, 0);
    s.handle({ type: 'remote-add', key: 'aaaa/t7', endpoint: { network: 'aaaa', ip: '10.0.1.7', mac: '02:42:0a:00:01:07', nodeIp: '192.168.1.5' } }, 0);
    s.handle({ type: 'remote-add', key: 'bbbb/t8', endpoint: { network: 'bbbb', ip: '10.0.2.8', mac: '02:42:0a:00:02:08', nodeIp: '192.168.1.3' } }, 0);
    s.handle({ type: 'network-forget', networkId: 'aaaa' }, 1);
    s.handle({ type: 'network-define', network: A }, 2);
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } }, 2);
    s.handle({ type: 'remote-add', key: 'aaaa/t6', endpoint: { network: 'aaaa', ip: '10.0.1.6', mac: '02:42:0a:00:01:06', nodeIp: '192.168.1.2' } }, 3);
    assert.deepEqual(s.input().remote.map((e) => e.ip).sort(), ['10.0.1.6', '10.0.2.8'], 'B keeps its remote; A only what came after');
  });
  test('failure → backoff retries; success resets; periodic resync', () => {
    const s = new OverlayState(0, timers);
    s.tick(0);
    s.drain();
    s.reconciled(false, 0);
    assert.equal(s.nextDeadline(), 500);
    s.handle({ type: 'members', underlayIps: [] }, 100);
    assert.equal(s.nextDeadline(), 500, 'an event does not bypass the backoff');
    s.tick(500);
    assert.equal(s.drain()[0]?.reason, 'retry');
    s.reconciled(false, 500);
    assert.equal(s.nextDeadline(), 1500);
    assert.equal(s.consecutiveFailures, 2);
    s.tick(1500);
    s.drain();
    s.reconciled(true, 1500);
    assert.equal(s.nextDeadline(), 11_500);
    s.tick(11_500);
    assert.equal(s.drain()[0]?.reason, 'resync');
  });
});

describe('OverlayService (fakes, real timers)', () => {
  test('settle() returns under steady churn once a reconcile that includes the call\'s events finished', async () => {
    let reconciles = 0;
    const slow = { reconcile: async () => { reconciles++; await new Promise((r) => setTimeout(r, 30)); return { created: [], removed: [], fixed: [] } as never; }, status: async () => ({}) as never };
    const svc = new OverlayService({ reconciler: slow as never, clock: { now: () => performance.now() }, timers: { debounceMs: 5, resyncMs: 60_000, retryMinMs: 20, retryMaxMs: 40 }, onError: () => undefined });
    svc.start();
    let i = 0;
    const churn = setInterval(() => svc.handle({ type: 'members', underlayIps: [`192.168.1.${(i++ % 200) + 1}`] }), 5);
    try {
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      const before = reconciles;
      await svc.settle(100);
      const took = performance.now() - t0;
      assert.ok(took < 1000, `settle took ${took} ms under churn`);
      assert.ok(reconciles - before >= 1 && reconciles - before <= 3, `${reconciles - before} reconciles while settling`);
    } finally {
      clearInterval(churn);
      svc.stop();
    }
  });

  test('events → reconcile on the fake kernel; errors go to onError and are retried', async () => {
    const kernel = new FakeOverlayKernel();
    const guard = new FakeVxlanGuard();
    const clock = { now: () => performance.now() };
    const errors: MeshError[] = [];
    const svc = new OverlayService({
      reconciler: new OverlayReconciler({ prefix: 'm-', hostNs: null, underlayIp: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 }, kernel, guard),
      clock, timers: { debounceMs: 5, resyncMs: 60_000, retryMinMs: 20, retryMaxMs: 40 }, onError: (e) => errors.push(e),
    });
    svc.start();
    svc.handle({ type: 'network-define', network: A });
    svc.handle({ type: 'members', underlayIps: ['192.168.1.1', '192.168.1.2'] });
    svc.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    svc.handle({ type: 'remote-add', key: 'k', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', nodeIp: '192.168.1.2' } });
    await svc.settle(10);
    assert.deepEqual(kernel.state.sandboxes.map((s) => [s.ns, s.fdb.length]), [['m-ov-aaaa', 1]]);
    guard.failWith = 'boom';
    svc.handle({ type: 'remote-remove', key: 'k' });
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(errors.length >= 1 && errors[0]!.code === 'MESHD_NOT_READY');
    assert.equal(kernel.state.sandboxes[0]!.fdb.length, 1, 'fail closed: nothing changed');
    guard.failWith = null;
    await new Promise((r) => setTimeout(r, 80));
    await svc.settle(10);
    assert.equal(kernel.state.sandboxes[0]!.fdb.length, 0);
    assert.equal(svc.lastError, null);
    const st = await svc.status();
    assert.deepEqual(st.drift, []);
    svc.stop();
  });
});

