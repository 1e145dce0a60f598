/**
 * The reconcile loop against in-memory fakes: converge, restart with no memory, repair
 * drift, fail closed when the guard cannot be installed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeVxlanGuard } from '../../helpers/fake-vxlan-guard.js';
import { FakeOverlayKernel } from '../../../src/adapters/netlink/fake.js';
import { OverlayReconciler } from '../../../src/adapters/netlink/overlay.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { OverlayConfig, OverlayNetwork, RemoteEndpoint } from '../../../src/core/overlay/model.js';
import { isMeshError } from '../../../src/core/errors.js';

const config: OverlayConfig = { prefix: 'meshd-', hostNs: null, underlayIp: '192.168.1.1', underlayMtu: 9000, vxlanPort: 4789 };
const A: OverlayNetwork = { id: 'aaaa', name: 'a', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const B: OverlayNetwork = { id: 'bbbb', name: 'b', vni: 4097, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };
const ep = (n: OverlayNetwork, ip: string, node: string): RemoteEndpoint => ({ network: n.id, ip, mac: macFromIp(ip), nodeIp: node });
const members = ['192.168.1.1', '192.168.1.2', '192.168.1.3'];
const remote = [ep(A, '10.0.1.2', '192.168.1.2'), ep(A, '10.0.1.3', '192.168.1.3'), ep(B, '10.0.2.2', '192.168.1.2')];

describe('OverlayReconciler (fakes)', () => {
  test('converges, is idempotent, and a fresh reconciler (agent restart) finds nothing to do', async () => {
    const k = new FakeOverlayKernel();
    const g = new FakeVxlanGuard();
    const r1 = await new OverlayReconciler(config, k, g).reconcile({ networks: [A, B], remote, members });
    assert.ok(r1.ops > 0);
    assert.equal(r1.processes, 2 + 1 + 4); // 2 netns add, one host batch, ip+bridge per sandbox
    assert.equal(k.state.sandboxes[0]!.vxlan!.mtu, 8950);
    assert.deepEqual(g.state.allow, ['192.168.1.2', '192.168.1.3']);
    const r2 = await new OverlayReconciler(config, k, g).reconcile({ networks: [A, B], remote, members });
    assert.equal(r2.ops, 0);
  });
  test('drift is repaired from the kernel state, not from memory', async () => {
    const k = new FakeOverlayKernel();
    const g = new FakeVxlanGuard();
    const input = { networks: [A], remote, members };
    await new OverlayReconciler(config, k, g).reconcile(input);
    k.state.sandboxes[0]!.fdb = [];
    k.state.sandboxes[0]!.neigh.pop();
    const st = await new OverlayReconciler(config, k, g).status(input);
    assert.equal(st.drift.length, 3);
    const r = await new OverlayReconciler(config, k, g).reconcile(input);
    assert.equal(r.ops, 3);
    assert.match(r.plan, /fdb replace 02:42:0a:00:01:02 dev vx-4096 dst 192.168.1.2 self permanent/);
  });
  test('endpoint and node departures remove entries; network removal removes the sandbox', async () => {
    const k = new FakeOverlayKernel();
    const g = new FakeVxlanGuard();
    const rec = new OverlayReconciler(config, k, g);
    await rec.reconcile({ networks: [A, B], remote, members });
    await rec.reconcile({ networks: [A, B], remote, members: ['192.168.1.1', '192.168.1.2'] });
    assert.deepEqual(k.state.sandboxes.find((s) => s.ns === 'meshd-ov-aaaa')!.fdb.map((f) => f.dst), ['192.168.1.2']);
    assert.deepEqual(g.state.allow, ['192.168.1.2']);
    await rec.reconcile({ networks: [A], remote, members });
    assert.deepEqual(k.state.sandboxes.map((s) => s.ns), ['meshd-ov-aaaa']);
  });
  test('additions only (restarted agent before gossip synced): adds what appeared, removes nothing, leaves the guard; then full', async () => {
    const k = new FakeOverlayKernel();
    const g = new FakeVxlanGuard();
    await new OverlayReconciler(config, k, g).reconcile({ networks: [A, B], remote, members });
    // Restarted: it knows only network A so far, one old remote is gone and a new one appeared; a
    // member is missing from its partial list (the guard must not follow it yet).
    const input = { networks: [A], remote: [ep(A, '10.0.1.2', '192.168.1.2'), ep(A, '10.0.1.9', '192.168.1.2')], members: ['192.168.1.1', '192.168.1.2'] };
    const r = await new OverlayReconciler(config, k, g).reconcile(input, { additionsOnly: true });
    assert.equal(r.ops, 2, r.plan);
    assert.match(r.plan, /neigh replace 10\.0\.1\.9 /);
    assert.doesNotMatch(r.plan, / del /);
    assert.deepEqual(k.state.sandboxes.map((x) => x.ns), ['meshd-ov-aaaa', 'meshd-ov-bbbb'], 'B kept');
    assert.deepEqual(k.state.sandboxes[0]!.neigh.map((n) => n.ip).sort(), ['10.0.1.2', '10.0.1.3', '10.0.1.9'], 'stale 10.0.1.3 kept for now');
    assert.deepEqual(g.state.allow, ['192.168.1.2', '192.168.1.3'], 'guard untouched on partial membership');
    assert.deepEqual(k.state.sandboxes[0]!.fdb.map((f) => f.dst).sort(), ['192.168.1.2', '192.168.1.2', '192.168.1.3'], 'FDB of the missing member kept');
    const full = await new OverlayReconciler(config, k, g).reconcile(input);
    assert.match(full.plan, /ip netns del meshd-ov-bbbb/);
    assert.deepEqual(k.state.sandboxes[0]!.neigh.map((n) => n.ip).sort(), ['10.0.1.2', '10.0.1.9']);
  });
  test('guard failure → nothing created (fail closed)', async () => {
    const k = new FakeOverlayKernel();
    const g = new FakeVxlanGuard();
    g.failWith = 'no nftables';
    await assert.rejects(new OverlayReconciler(config, k, g).reconcile({ networks: [A], remote, members }),
      (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_READY');
    assert.deepEqual(k.state.sandboxes, []);
    assert.equal(k.batches, 0);
  });

  test('fresh: false starts from the last known state and computes entry changes without reading; structure, failure or drift read', async () => {
    const k = new FakeOverlayKernel();
    let reads = 0;
    const read = k.read.bind(k);
    k.read = () => (reads++, read());
    const g = new FakeVxlanGuard();
    const rec = new OverlayReconciler(config, k, g);
    const r0 = await rec.reconcile({ networks: [A, B], remote, members }, { fresh: false });
    assert.equal(r0.reads, 2, 'nothing known yet: read, apply, verify');
    reads = 0;
    const more = [...remote, ep(A, '10.0.1.4', '192.168.1.3')];
    const r1 = await rec.reconcile({ networks: [A, B], remote: more, members }, { fresh: false });
    assert.deepEqual([r1.ops, r1.reads, reads], [2, 0, 0], 'one neigh + one fdb entry: no read at all');
    assert.deepEqual(await k.read(), r1.actual, 'the computed state is what the kernel holds');
    reads = 0;
    const r2 = await rec.reconcile({ networks: [A, B], remote, members }, { fresh: false });
    assert.deepEqual([r2.ops, r2.reads], [2, 0], 'removal modelled too');
    assert.deepEqual(await k.read(), r2.actual);
    reads = 0;
    // Structure (a network goes) is read back to verify.
    const r3 = await rec.reconcile({ networks: [A], remote, members }, { fresh: false });
    assert.equal(r3.reads, 1, 'from the known state, then verified by a read');
    // Drift behind our back is not seen by fresh: false (until a fresh reconcile), and a fresh one repairs it.
    k.state.sandboxes[0]!.fdb = [];
    const r4 = await rec.reconcile({ networks: [A], remote, members }, { fresh: false });
    assert.equal(r4.ops, 0);
    const r5 = await rec.reconcile({ networks: [A], remote, members });
    assert.equal(r5.ops, 2, 'the default (fresh) reads and repairs');
    // A failed apply forgets the known state: the next reconcile reads.
    const apply = k.apply.bind(k);
    k.apply = async () => { throw new Error('boom'); };
    await assert.rejects(rec.reconcile({ networks: [A], remote: more, members }, { fresh: false }));
    k.apply = apply;
    reads = 0;
    const r6 = await rec.reconcile({ networks: [A], remote: more, members }, { fresh: false });
    assert.equal(r6.reads, 2, 'nothing known after a failure');
    assert.equal(rec.counters.modelled, 2);
  });
});
