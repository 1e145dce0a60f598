/**
 * The ONE compliance suite for the overlay reconciler (js-libp2p style: a function taking a
 * factory), run against the real iproute2 kernel inside namespaces the test creates
 * (test/integration/overlay/reconciler-compliance.test.ts) and against the in-memory fake
 * (test/unit/overlay/reconciler-compliance.test.ts): the same contract — converge, idempotent,
 * no memory (a fresh reconciler finds nothing to do), drift repaired from what the kernel holds,
 * departures removed, additions-only before gossip has synced, fail closed, bad input touches
 * nothing — so the fake that the agent's unit tests stand on behaves like the kernel.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { VxlanGuard } from '../../src/adapters/firewall/vxlan-guard.js';
import type { OverlayKernel, OverlayInput } from '../../src/adapters/netlink/overlay.js';
import { OverlayReconciler } from '../../src/adapters/netlink/overlay.js';
import { isMeshError } from '../../src/core/errors.js';
import { macFromIp } from '../../src/core/ipam/addr.js';
import { type NodeState, type OverlayConfig, type OverlayNetwork, type RemoteEndpoint, sandboxName, vxlanName } from '../../src/core/overlay/model.js';
import { FakeVxlanGuard } from './fake-vxlan-guard.js';

/** Changes the kernel behind the reconciler's back (someone with `ip`/`bridge` on the node). */
export interface OverlayTamper {
  dropFdb(ns: string, dev: string, mac: string, dst: string): Promise<void>;
  dropNeigh(ns: string, dev: string, ip: string): Promise<void>;
  dropLink(ns: string, dev: string): Promise<void>;
  /** A `vx-<vni>` link left in the host namespace (a crash between create and move). */
  addStrayHostLink(vni: number): Promise<void>;
}

export interface OverlayUnderTest {
  config: OverlayConfig;
  /** The kernel edge under test (every reconciler of the suite reads and writes through it). */
  kernel: OverlayKernel;
  /** The VXLAN guard of this node (the fail-closed test swaps in a failing fake). */
  guard: VxlanGuard;
  tamper: OverlayTamper;
  /** Namespaces with the config's prefix that exist now (sandboxes the kernel really holds). */
  namespaces(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const A: OverlayNetwork = { id: 'cafe0001', name: 'app', vni: 4301, subnet: '10.93.1.0/24', gateway: '10.93.1.1' };
const B: OverlayNetwork = { id: 'cafe0002', name: 'other', vni: 4302, subnet: '10.93.2.0/24', gateway: '10.93.2.1', mtu: 1400 };
const SELF = '192.168.231.1';
const N2 = '192.168.231.2';
const N3 = '192.168.231.3';
const ep = (n: OverlayNetwork, ip: string, nodeIp: string): RemoteEndpoint => ({ network: n.id, ip, mac: macFromIp(ip), nodeIp });
const REMOTE = [ep(A, '10.93.1.2', N2), ep(A, '10.93.1.3', N3), ep(B, '10.93.2.2', N2)];
const MEMBERS = [SELF, N2, N3];

/** Runs the suite; `make(prefix)` builds the implementation for namespaces named `prefix*`. */
export function overlayReconcilerCompliance(name: string, prefix: string, make: (prefix: string) => Promise<OverlayUnderTest>): void {
  describe(`overlay reconciler compliance: ${name}`, () => {
    let u: OverlayUnderTest;
    /** A fresh reconciler each time: nothing survives between calls but the kernel. */
    const rec = (guard?: VxlanGuard): OverlayReconciler => new OverlayReconciler(u.config, u.kernel, guard ?? u.guard);
    const sb = (n: OverlayNetwork): string => sandboxName(u.config.prefix, n.id);
    const sandboxOf = (st: NodeState, n: OverlayNetwork) => st.sandboxes.find((s) => s.ns === sb(n));
    const full: OverlayInput = { networks: [A, B], remote: REMOTE, members: MEMBERS };
    const reset = async (): Promise<void> => {
      await rec().reconcile({ networks: [], remote: [], members: MEMBERS });
      await rec().reconcile(full);
    };

    before(async () => {
      u = await make(prefix);
    });
    after(async () => {
      await u?.cleanup();
    });

    test('converges from nothing; a second reconcile and a fresh reconciler (agent restart) find nothing to do', async () => {
      const r1 = await rec().reconcile(full);
      assert.ok(r1.ops > 0, 'created');
      assert.ok(r1.processes >= 4, `batched: ${r1.processes} processes`);
      assert.ok(r1.actual, 'the report carries the kernel read back');
      assert.equal((await rec().reconcile(full)).ops, 0);
      const st = await rec().status(full);
      assert.deepEqual(st.drift, []);
      const a = sandboxOf(st.actual, A);
      assert.deepEqual(a?.fdb.map((f) => f.dst).sort(), [N2, N3]);
      assert.deepEqual(a?.neigh.map((x) => x.ip), ['10.93.1.2', '10.93.1.3']);
      assert.equal(a?.vxlan?.learning, false);
      assert.equal(a?.vxlan?.mtu, u.config.underlayMtu - 50);
      assert.equal(sandboxOf(st.actual, B)?.vxlan?.mtu, 1400, 'per-network MTU');
      assert.deepEqual(sandboxOf(st.actual, A)?.bridge?.addrs, ['10.93.1.1/24']);
      assert.deepEqual((await u.guard.read()).allow, [N2, N3], 'guard allows the other members');
      assert.deepEqual((await u.namespaces()).sort(), [sb(A), sb(B)]);
    });

    test('drift (FDB entry, neighbour, VXLAN device deleted by hand) is seen by status and repaired from the kernel', async () => {
      await rec().reconcile(full);
      await u.tamper.dropFdb(sb(A), vxlanName(A.vni), macFromIp('10.93.1.2'), N2);
      await u.tamper.dropNeigh(sb(A), vxlanName(A.vni), '10.93.1.3');
      await u.tamper.dropLink(sb(B), vxlanName(B.vni));
      const st = await rec().status(full);
      assert.ok(st.drift.length >= 4, `drift seen: ${st.drift.length}`);
      const r = await rec().reconcile(full);
      assert.equal(r.ops, st.drift.length, 'repairs exactly what status reported');
      assert.match(r.plan, /fdb replace 02:42:0a:5d:01:02 dev vx-4301 dst 192\.168\.231\.2 self permanent/);
      assert.deepEqual((await rec().status(full)).drift, []);
    });

    test('a stray VXLAN link in the host namespace is removed', async () => {
      await reset();
      await u.tamper.addStrayHostLink(4399);
      const st = await rec().status(full);
      assert.deepEqual(st.actual.strayHostLinks, ['vx-4399']);
      await rec().reconcile(full);
      assert.deepEqual((await rec().status(full)).actual.strayHostLinks, []);
    });

    test('endpoint and member departures remove entries and narrow the guard; a network removed loses its sandbox', async () => {
      await reset();
      await rec().reconcile({ networks: [A, B], remote: REMOTE, members: [SELF, N2] });
      let st = await rec().status(full);
      assert.deepEqual(sandboxOf(st.actual, A)?.fdb.map((f) => f.dst), [N2], 'N3 left: its endpoint goes');
      assert.deepEqual((await u.guard.read()).allow, [N2]);
      await rec().reconcile({ networks: [A], remote: REMOTE.slice(1), members: MEMBERS });
      st = await rec().status(full);
      assert.deepEqual(sandboxOf(st.actual, A)?.neigh.map((x) => x.ip), ['10.93.1.3']);
      assert.equal(sandboxOf(st.actual, B), undefined);
      assert.deepEqual(await u.namespaces(), [sb(A)]);
    });

    test('additions only (before gossip synced): adds and repairs, removes nothing, leaves the guard; then full', async () => {
      await reset();
      const partial: OverlayInput = { networks: [A], remote: [REMOTE[0]!, ep(A, '10.93.1.9', N2)], members: [SELF, N2] };
      const r = await rec().reconcile(partial, { additionsOnly: true });
      assert.equal(r.ops, 2, r.plan);
      assert.doesNotMatch(r.plan, / del /);
      let st = await rec().status(full);
      assert.deepEqual(sandboxOf(st.actual, A)?.neigh.map((x) => x.ip), ['10.93.1.2', '10.93.1.3', '10.93.1.9']);
      assert.ok(sandboxOf(st.actual, B), 'B kept');
      assert.deepEqual((await u.guard.read()).allow, [N2, N3], 'guard untouched on partial membership');
      await rec().reconcile(partial);
      st = await rec().status(partial);
      assert.deepEqual(st.drift, []);
      assert.deepEqual(sandboxOf(st.actual, A)?.neigh.map((x) => x.ip), ['10.93.1.2', '10.93.1.9']);
      assert.deepEqual(await u.namespaces(), [sb(A)]);
    });

    test('the guard cannot be installed → nothing is created or changed (fail closed)', async () => {
      await rec().reconcile({ networks: [], remote: [], members: MEMBERS });
      const broken = new FakeVxlanGuard();
      broken.failWith = 'nft: Operation not supported';
      await assert.rejects(rec(broken).reconcile(full), (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_READY' && /fail closed/.test(e.message));
      assert.deepEqual(await u.namespaces(), []);
    });

    test('bad input → a clear error, the kernel untouched', async () => {
      await reset();
      const before = JSON.stringify(await u.kernel.read());
      const bogus: OverlayNetwork = { id: 'cafe0004', name: 'd', vni: 4304, subnet: '10.93.4.0/33', gateway: '10.93.4.1' };
      await assert.rejects(rec().reconcile({ ...full, networks: [A, B, bogus] }), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && /invalid CIDR/.test(e.message));
      const dupVni: OverlayNetwork = { ...B, id: 'cafe0005', vni: A.vni };
      await assert.rejects(rec().reconcile({ ...full, networks: [A, dupVni] }), (e: unknown) => isMeshError(e) && /share VNI/.test(e.message));
      await assert.rejects(rec().reconcile({ ...full, members: ['not-an-ip'] }), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
      assert.equal(JSON.stringify(await u.kernel.read()), before);
    });

    test('removing every network leaves nothing behind', async () => {
      await reset();
      await rec().reconcile({ networks: [], remote: [], members: MEMBERS });
      const st = await u.kernel.read();
      assert.deepEqual(st.sandboxes, []);
      assert.deepEqual(st.strayHostLinks, []);
      assert.deepEqual(await u.namespaces(), []);
    });
  });
}
