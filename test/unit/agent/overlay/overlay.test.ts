/**
 * The overlay subsystem's shell on simulated time (ManualClock, fake gossip, fake kernel): gossip
 * events reach the kernel through the grace policy and the reconcile loop; a dead member's
 * entries stay for deadGraceMs (and its address in the guard), go at its end, and never go when
 * it comes back and republishes in time; a graceful leave removes at once; bad records are
 * counted and never programmed. Nothing sleeps.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Exec } from '../../../../src/adapters/exec.js';
import { FakeOverlayKernel } from '../../../../src/adapters/netlink/fake.js';
import { type GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent, MemberState } from '../../../../src/core/gossip/index.js';
import type { OverlayNetwork } from '../../../../src/core/overlay/model.js';
import { FakeVxlanGuard } from '../../../helpers/fake-vxlan-guard.js';

const NET: OverlayNetwork = { id: 'aaaa', name: 'app', vni: 4200, subnet: '10.40.0.0/24', gateway: '10.40.0.1' };
const GRACE = 1000;
const ADDR: Record<string, string> = { n1: '10.99.1.1', n2: '10.99.1.2', n3: '10.99.1.3' };

class FakeGossip implements GossipPort {
  readonly states = new Map<string, MemberState>([['n1', 'alive'], ['n2', 'alive'], ['n3', 'alive']]);
  private readonly listeners: Array<(ev: GossipEvent) => void> = [];
  readonly core = {
    members: () => [...this.states].map(([name, state]) => ({ name, addr: `${ADDR[name]}:7946`, state, incarnation: 1 })),
    member: (n: string) => (this.states.has(n) ? { name: n, addr: `${ADDR[n]}:7946`, state: this.states.get(n)!, incarnation: 1 } : undefined),
    networks: () => [NET.id],
    networkNodes: () => ['n1', 'n2', 'n3'],
    tableEntries: () => [],
  } as unknown as GossipPort['core'];
  onEvent(l: (ev: GossipEvent) => void): void {
    this.listeners.push(l);
  }
  pump(): void {}
  emit(ev: GossipEvent): void {
    for (const l of this.listeners) l(ev);
  }
  member(name: string, state: MemberState): void {
    this.states.set(name, state);
    const type = state === 'dead' ? 'member-dead' : state === 'left' ? 'member-left' : 'member-alive';
    this.emit({ type, name, addr: `${ADDR[name]}:7946`, incarnation: 1 } as GossipEvent);
  }
  publish(owner: string, key: string, ip: string, value?: Uint8Array): void {
    const rec: EndpointRecord = {
      v: 1, taskId: key, taskName: 'web.1', serviceId: 's1', serviceName: 'web', network: NET.id, networkName: NET.name, ip, mac: macOf(ip),
      node: owner, nodeIp: ADDR[owner]!, vip: null, endpointMode: 'vip', aliases: [], ports: [], state: 'running',
    };
    this.emit({ type: 'create', network: NET.id, table: ENDPOINT_TABLE, key, value: value ?? encodeEndpoint(rec), owner });
  }
  unpublish(owner: string, key: string): void {
    this.emit({ type: 'delete', network: NET.id, table: ENDPOINT_TABLE, key, value: new Uint8Array(), owner });
  }
}

const macOf = (ip: string): string => '02:42:' + ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join(':');
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

async function rig() {
  const clock = new ManualClock();
  const gossip = new FakeGossip();
  const kernel = new FakeOverlayKernel();
  const guard = new FakeVxlanGuard();
  const overlay = new OverlaySubsystem({
    nodeName: 'n1', underlayIp: ADDR.n1!, prefix: 'pfx-', gossip, clock, log: pino({ level: 'silent' }), exec: {} as Exec, underlayMtu: 1500,
    syncTimeoutMs: 0, deadGraceMs: GRACE, kernel, guard,
    timers: { debounceMs: 50, resyncMs: 60_000, retryMinMs: 500, retryMaxMs: 4000 },
  });
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  await overlay.start();
  overlay.defineNetwork(NET);
  overlay.addLocal('t1', { network: NET.id, ip: '10.40.0.11', mac: macOf('10.40.0.11') });
  await overlay.activate();
  await step(0);
  const fdb = (): string[] => (kernel.state.sandboxes[0]?.fdb ?? []).map((f) => `${f.mac}@${f.dst}`).sort();
  return { clock, gossip, kernel, guard, overlay, step, fdb };
}

describe('OverlaySubsystem (ManualClock, fakes)', () => {
  test('remote endpoints from gossip reach the kernel in one debounced reconcile', async () => {
    const r = await rig();
    assert.ok(r.overlay.active);
    assert.deepEqual(r.kernel.state.sandboxes.map((s) => s.ns), ['pfx-ov-aaaa']);
    r.gossip.publish('n2', 't2', '10.40.0.12');
    r.gossip.publish('n3', 't3', '10.40.0.13');
    await r.step(49);
    assert.deepEqual(r.fdb(), []);
    await r.step(1);
    assert.deepEqual(r.fdb(), [`${macOf('10.40.0.12')}@10.99.1.2`, `${macOf('10.40.0.13')}@10.99.1.3`]);
    assert.deepEqual(r.overlay.programmed()?.size, 2);
    await r.overlay.stop();
  });

  test('member events that leave the guard allow-list as it was cost no reconcile (suspect/alive flaps)', async () => {
    const r = await rig();
    const before = r.overlay.reconciles;
    for (let i = 0; i < 20; i++) {
      r.gossip.states.set('n2', 'suspect');
      r.gossip.emit({ type: 'member-suspect', name: 'n2', addr: `${ADDR.n2}:7946`, incarnation: 1 } as GossipEvent);
      r.gossip.member('n2', 'alive');
      await r.step(60);
    }
    assert.equal(r.overlay.reconciles, before, 'no reconcile: the allow-list never changed');
    const updates = r.guard.updates;
    assert.equal(updates, 0, 'no guard write either');
    r.gossip.member('n3', 'left'); // the allow-list changes: one guard write, and no overlay reconcile (no endpoint on n3)
    await r.step(60);
    assert.equal(r.overlay.reconciles, before);
    assert.deepEqual(r.guard.state.allow, ['10.99.1.2']);
    assert.equal(r.guard.updates, 1);
    await r.overlay.stop();
  });

  test('a member change that moves a remote endpoint reconciles the overlay; one that does not, only the guard', async () => {
    const r = await rig();
    r.gossip.publish('n2', 't2', '10.40.0.12');
    await r.step(50);
    const before = r.overlay.reconciles;
    r.gossip.states.set('n3', 'left');
    r.gossip.member('n3', 'left');
    await r.step(60);
    assert.equal(r.overlay.reconciles, before, 'n3 holds no endpoint');
    r.gossip.states.set('n2', 'left');
    r.gossip.member('n2', 'left');
    await r.step(60);
    assert.equal(r.overlay.reconciles, before + 1, 'n2 held t2');
    assert.deepEqual(r.fdb(), []);
    await r.step(1000);
    assert.deepEqual(r.guard.state.allow, []);
    await r.overlay.stop();
  });

  test('a join storm: at most one guard write a second, the final member set written, a leave gone within 1 s', async () => {
    const r = await rig();
    const writes: Array<[number, string]> = [];
    const real = r.guard.update.bind(r.guard);
    r.guard.update = async (port, allow) => {
      writes.push([r.clock.now(), [...allow].join(',')]);
      return real(port, allow);
    };
    const t0 = r.clock.now();
    // 40 members join one by one, every 25 ms (1 s), interleaved with n3 flapping away and back.
    for (let i = 0; i < 40; i++) {
      const name = `m${i}`;
      ADDR[name] = `10.99.2.${i + 1}`;
      r.gossip.states.set(name, 'alive');
      r.gossip.emit({ type: 'member-join', name, addr: `${ADDR[name]}:7946`, incarnation: 1 } as GossipEvent);
      await r.step(25);
    }
    await r.step(2000);
    const starts = writes.map(([t]) => t);
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! >= 1000, `writes ${starts[i - 1]! - t0} and ${starts[i]! - t0} ms are < 1 s apart`);
    assert.ok(writes.length <= 3, `${writes.length} writes for 40 joins`);
    assert.equal(r.guard.state.allow.length, 42, 'every member written (n2, n3 and 40)');
    // A leave: gone within 1 s of the event even right after a write.
    const tLeave = r.clock.now();
    r.gossip.states.set('m7', 'left');
    r.gossip.member('m7', 'left');
    let gone = -1;
    for (let t = 0; t <= 1200 && gone < 0; t += 10) {
      if (!r.guard.state.allow.includes(ADDR.m7!)) gone = r.clock.now() - tLeave;
      else await r.step(10);
    }
    assert.ok(gone >= 0 && gone <= 1000, `m7 removed after ${gone} ms`);
    assert.equal(r.overlay.reconciles > 0, true);
    await r.overlay.stop();
    assert.equal(r.clock.pendingTimers, 0, 'stop cancels every timer');
  });

  test('the guard fails: the overlay stays as it is (fail closed); it recovers once the guard does', async () => {
    const r = await rig();
    r.guard.failWith = 'nft: table vanished';
    r.gossip.states.set('n3', 'left');
    r.gossip.member('n3', 'left'); // the guard's write fails (when its window opens: 1 s after the first write)
    await r.step(1000);
    assert.equal(r.overlay.status !== undefined && (await r.overlay.status()).guard?.status, 'failed');
    assert.deepEqual(r.guard.state.allow, ['10.99.1.2', '10.99.1.3'], 'not written');
    r.gossip.publish('n2', 't2', '10.40.0.12');
    await r.step(60);
    assert.deepEqual(r.fdb(), [], 'no overlay change while the guard is failing');
    assert.match(r.overlay.lastErrorMessage ?? '', /table vanished/);
    r.guard.failWith = null;
    for (let t = 0; t < 3000; t += 100) await r.step(100); // guard retry (a verify) 1 s after the failure, then the overlay's retry
    assert.deepEqual(r.guard.state.allow, ['10.99.1.2']);
    assert.equal(r.fdb().length, 1, JSON.stringify({ err: r.overlay.lastErrorMessage, st: (await r.overlay.status()).guard }));
    const st = await r.overlay.status();
    assert.equal(st.guard?.status, 'ok');
    assert.equal(st.guard?.counters.failed, 1);
    await r.overlay.stop();
  });

  test('a dead member: entries and guard address kept for deadGraceMs, removed at its end', async () => {
    const r = await rig();
    r.gossip.publish('n2', 't2', '10.40.0.12');
    await r.step(50);
    r.gossip.states.set('n2', 'dead');
    r.gossip.member('n2', 'dead');
    r.gossip.unpublish('n2', 't2');
    await r.step(50);
    assert.equal(r.fdb().length, 1, 'held');
    assert.deepEqual(r.guard.state.allow, ['10.99.1.2', '10.99.1.3'], 'still allowed during its grace');
    await r.step(GRACE - 100); // t = death + 950
    assert.equal(r.fdb().length, 1);
    await r.step(50); // the grace ends: removal handed to the loop, debounced 50 ms
    await r.step(50);
    assert.deepEqual(r.fdb(), []);
    assert.deepEqual(r.guard.state.allow, ['10.99.1.3']);
    assert.equal(r.clock.pendingTimers > 0, true, 'only the resync timer remains');
    await r.overlay.stop();
    assert.equal(r.clock.pendingTimers, 0, 'stop cancels every timer');
  });

  test('a dead member that comes back and republishes within the grace: its entries are never removed', async () => {
    const r = await rig();
    r.gossip.publish('n2', 't2', '10.40.0.12');
    await r.step(50);
    r.gossip.member('n2', 'dead');
    r.gossip.unpublish('n2', 't2');
    for (let t = 0; t < 500; t += 50) {
      await r.step(50);
      assert.equal(r.fdb().length, 1, `held at +${t + 50} ms`);
    }
    r.gossip.member('n2', 'alive');
    r.gossip.publish('n2', 't2', '10.40.0.12');
    for (let t = 0; t < 3 * GRACE; t += 250) {
      await r.step(250);
      assert.equal(r.fdb().length, 1, `kept at +${t + 250} ms after its return`);
    }
    await r.overlay.stop();
  });

  test('a graceful leave removes at once; a delete by a live owner too', async () => {
    const r = await rig();
    r.gossip.publish('n2', 't2', '10.40.0.12');
    r.gossip.publish('n3', 't3', '10.40.0.13');
    await r.step(50);
    r.gossip.unpublish('n3', 't3');
    await r.step(50);
    assert.equal(r.fdb().length, 1, 'live owner deleted t3');
    r.gossip.member('n2', 'dead');
    r.gossip.unpublish('n2', 't2');
    r.gossip.states.set('n2', 'left');
    r.gossip.member('n2', 'left');
    await r.step(50);
    assert.deepEqual(r.fdb(), []);
    await r.overlay.stop();
  });

  test('bad records are counted and never programmed; our own records are not remote', async () => {
    const r = await rig();
    r.gossip.publish('n2', 'bad', '10.40.0.99', new TextEncoder().encode('{"v":1}'));
    r.gossip.publish('n1', 'mine', '10.40.0.11');
    await r.step(50);
    assert.deepEqual(r.fdb(), []);
    const st = await r.overlay.status();
    assert.equal(Object.values(st.badRecords).reduce((a, b) => a + b, 0), 1);
    assert.equal(st.remote, 0);
    await r.overlay.stop();
  });
});
