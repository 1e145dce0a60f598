/**
 * The overlay's automatic-MTU shell on simulated time (ManualClock, fake probe, fake kernel): a round
 * at start, one after a member joins that probes only the new peer (a burst of joins = one round,
 * at a random point of the join spread), one every probeIntervalMs ± 10 %; a smaller path re-programs the sandbox (bridge + VXLAN) and tells listeners
 * (the worker's re-tune) once; a network with --mtu keeps it; a failed probe is retried, never
 * taken for a small path. Nothing sleeps.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Exec } from '../../../../src/adapters/exec.js';
import { FakeOverlayKernel } from '../../../../src/adapters/netlink/fake.js';
import { OverlayMtu } from '../../../../src/agent/overlay/mtu.js';
import { type GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { ManualClock } from '../../../../src/core/clock.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import type { MtuChange } from '../../../../src/core/overlay/mtu.js';
import type { OverlayNetwork } from '../../../../src/core/overlay/model.js';
import { FakeVxlanGuard } from '../../../helpers/fake-vxlan-guard.js';

const NET: OverlayNetwork = { id: 'aaaa', name: 'app', vni: 4200, subnet: '10.40.0.0/24', gateway: '10.40.0.1' };
const FIXED: OverlayNetwork = { id: 'bbbb', name: 'db', vni: 4201, subnet: '10.41.0.0/24', gateway: '10.41.0.1', mtu: 1200 };
const ADDR: Record<string, string> = { n1: '10.99.1.1', n2: '10.99.1.2', n3: '10.99.1.3' };
const INTERVAL = 60_000;

function gossipOf(names: string[]) {
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const g: GossipPort & { emit(ev: GossipEvent): void; names: string[] } = {
    names,
    core: {
      members: () => g.names.map((name) => ({ name, addr: `${ADDR[name]}:7946`, state: 'alive', incarnation: 1 })),
      member: () => undefined,
      networks: () => [],
      networkNodes: () => [],
      tableEntries: () => [],
    } as unknown as GossipPort['core'],
    onEvent: (l) => void listeners.push(l),
    pump: () => undefined,
    emit: (ev) => listeners.forEach((l) => l(ev)),
  };
  return g;
}
const flush = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
};

async function rig(paths: Record<string, number | null>, fail = { n: 0 }) {
  const clock = new ManualClock();
  const gossip = gossipOf(['n1', 'n2']);
  const kernel = new FakeOverlayKernel();
  const probes: string[][] = [];
  const overlay = new OverlaySubsystem({
    nodeName: 'n1', underlayIp: ADDR.n1!, prefix: 'pfx-', gossip, clock, log: pino({ level: 'silent' }), exec: {} as Exec, underlayMtu: 1500,
    syncTimeoutMs: 0, kernel, guard: new FakeVxlanGuard(),
    timers: { debounceMs: 50, resyncMs: 600_000, retryMinMs: 500, retryMaxMs: 4000 },
    mtu: { probeIntervalMs: INTERVAL, joinDelayMs: 1000, joinSpreadMs: 0, raiseAfterRounds: 2 },
    mtuProbe: async (peers, max) => {
      probes.push([...peers]);
      assert.equal(max, 1500, 'probes up to the link MTU');
      if (fail.n > 0) {
        fail.n--;
        throw new Error('ping: not found');
      }
      return Object.fromEntries(peers.map((p) => [p, paths[p] ?? null]));
    },
  });
  const changes: MtuChange[] = [];
  overlay.onMtuChange((c) => void changes.push(c));
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  await overlay.start();
  overlay.defineNetwork(NET);
  overlay.defineNetwork(FIXED);
  overlay.addLocal('t1', { network: NET.id, ip: '10.40.0.11', mac: '02:42:0a:28:00:0b' });
  overlay.addLocal('t2', { network: FIXED.id, ip: '10.41.0.11', mac: '02:42:0a:29:00:0b' });
  await overlay.activate();
  await step(0);
  const mtus = () => kernel.state.sandboxes.map((s) => `${s.ns}:${s.bridge?.mtu}/${s.vxlan?.mtu}`);
  return { clock, gossip, kernel, overlay, step, probes, changes, mtus, paths };
}

describe('automatic overlay MTU (agent shell, ManualClock)', () => {
  test('a smaller path lowers the sandbox MTU once, loudly; --mtu network keeps 1200; a new member is probed within the join delay', async () => {
    const r = await rig({ [ADDR.n2!]: 1500, [ADDR.n3!]: 1400 });
    assert.deepEqual(r.probes, [[ADDR.n2]], 'a round at start');
    assert.deepEqual(r.mtus(), ['pfx-ov-aaaa:1450/1450', 'pfx-ov-bbbb:1200/1200']);
    assert.equal(r.overlay.mtuOf(NET), 1450);
    r.gossip.names = ['n1', 'n2', 'n3'];
    for (let i = 0; i < 3; i++) r.gossip.emit({ type: 'member-join', name: 'n3', addr: `${ADDR.n3}:7946`, incarnation: 1 } as GossipEvent);
    await r.step(999);
    assert.equal(r.probes.length, 1, 'not before the join delay');
    await r.step(1);
    await r.step(50); // the reconcile's debounce
    assert.deepEqual(r.probes, [[ADDR.n2], [ADDR.n3]], 'three join events, one round, of the new peer only');
    assert.equal(r.changes.length, 1);
    assert.deepEqual({ ...r.changes[0]!, at: 0 }, { from: 1500, to: 1400, overlayFrom: 1450, overlayTo: 1350, limitedBy: 'path', peer: ADDR.n3, at: 0 });
    assert.equal(r.overlay.mtuOf(NET), 1350);
    assert.equal(r.overlay.mtuOf(FIXED), 1200, '--mtu wins');
    assert.deepEqual(r.mtus(), ['pfx-ov-aaaa:1350/1350', 'pfx-ov-bbbb:1200/1200']);
    const st = await r.overlay.status();
    assert.equal(st.mtu?.overlay, 1350);
    assert.deepEqual(st.mtu?.paths, { [ADDR.n2!]: 1500, [ADDR.n3!]: 1400 });
    // The path heals: raised only after two periodic (full) rounds agree; periods are INTERVAL ± 10 %.
    r.paths[ADDR.n3!] = 1500;
    await r.step(INTERVAL * 1.1);
    assert.deepEqual(r.probes.at(-1), [ADDR.n2, ADDR.n3], 'the periodic round probes every peer');
    assert.equal(r.overlay.mtuOf(NET), 1350, 'one round is not enough');
    await r.step(INTERVAL * 1.1);
    await r.step(50);
    assert.equal(r.overlay.mtuOf(NET), 1450);
    assert.deepEqual(r.mtus(), ['pfx-ov-aaaa:1450/1450', 'pfx-ov-bbbb:1200/1200']);
    assert.equal(r.changes.length, 2);
    await r.overlay.stop();
  });

  test('a failed probe round is retried with back-off and changes nothing', async () => {
    const r = await rig({ [ADDR.n2!]: 1400 }, { n: 1 });
    assert.equal(r.overlay.mtu.failedRounds, 1);
    assert.equal(r.overlay.mtuOf(NET), 1450, 'a failure is not a small path');
    await r.step(5000);
    await r.step(50);
    assert.equal(r.probes.length, 2, 'retried');
    assert.equal(r.overlay.mtuOf(NET), 1350);
    await r.overlay.stop();
  });
});

describe('automatic MTU rounds are cheap and spread (OverlayMtu on a ManualClock)', () => {
  /**
   * Why this matters: every agent hears a join within milliseconds of the others. A full round per
   * join after a fixed delay made all 16 agents of the gossip lab fork a subshell and a ping per
   * peer in the same 100 ms, stalling their event loops past gossip's probe timeout.
   */
  async function shell(random: number) {
    const clock = new ManualClock();
    let peers = ['10.0.0.2', '10.0.0.3'];
    const probes: Array<{ at: number; peers: string[] }> = [];
    const m = new OverlayMtu({ probe: true, probeIntervalMs: 100_000, probeTimeoutMs: 1000, raiseAfterRounds: 2, joinDelayMs: 1000, joinSpreadMs: 4000 }, {
      exec: {} as Exec, clock, log: pino({ level: 'silent' }), peers: () => peers, random: () => random,
      probe: async (ps) => {
        probes.push({ at: clock.now(), peers: [...ps] });
        return Object.fromEntries(ps.map((p) => [p, p === '10.0.0.9' ? 1400 : 1500]));
      },
    });
    const step = async (ms: number): Promise<void> => {
      clock.advance(ms);
      await flush();
    };
    m.start(1500);
    await step(0);
    return { m, probes, step, setPeers: (p: string[]) => void (peers = p) };
  }

  test('a join probes only peers with no known path, at joinDelay + random × spread; no new peer, no process', async () => {
    const s = await shell(0.5);
    assert.deepEqual(s.probes, [{ at: 0, peers: ['10.0.0.2', '10.0.0.3'] }], 'a full round at start');
    s.setPeers(['10.0.0.2', '10.0.0.3', '10.0.0.9']);
    s.m.memberJoined();
    s.m.memberJoined();
    await s.step(2999);
    assert.equal(s.probes.length, 1, 'not before 1000 + 0.5 × 4000 ms');
    await s.step(1);
    assert.deepEqual(s.probes[1], { at: 3000, peers: ['10.0.0.9'] }, 'one partial round, the new peer only');
    assert.equal(s.m.view()?.underlay, 1400, 'a partial round lowers at once');
    s.m.memberJoined(); // a known member came back: nothing to measure
    await s.step(5000);
    assert.equal(s.probes.length, 2, 'no probe process when every path is known');
    s.m.stop();
  });

  test('a partial round never raises; periodic full rounds are jittered ±10 % and do', async () => {
    const s = await shell(0);
    assert.equal(s.m.view()?.underlay, 1500);
    s.setPeers(['10.0.0.2', '10.0.0.9']);
    s.m.memberJoined();
    await s.step(1000);
    assert.equal(s.m.view()?.underlay, 1400);
    assert.equal(s.m.view()?.rounds, 1, 'a partial round is not a round');
    await s.step(88_999); // t = 89 999
    assert.equal(s.probes.length, 2, 'random 0: the next full round at 90 s (100 s − 10 %), not earlier');
    await s.step(1);
    assert.deepEqual(s.probes.at(-1)?.peers, ['10.0.0.2', '10.0.0.9']);
    s.m.stop();
  });
});
