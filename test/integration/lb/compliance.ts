/**
 * The ONE shared compliance suite every Dataplane implementation must pass, in real namespaces
 * (js-libp2p style: a function taking a factory). Run here against nftables
 * (nftables.test.ts); written so the IPVS backend runs it unchanged inside the VM harness
 * (`runDataplaneCompliance({ name: 'ipvs', make: () => new IpvsDataplane(), tamper: ... })`):
 * it only needs `ip`, `node` and the backend's own tools.
 *
 * Traffic never leaves the test namespaces (PREFIX-*), which are deleted in `after` even on failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Dataplane } from '../../../src/adapters/dataplane/types.js';
import { isMeshError } from '../../../src/core/errors.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile, type Backend, type LbDesired } from '../../../src/core/lb/model.js';
import { realExec } from '../../../src/adapters/exec.js';
import { hold, loop, many, names, serve, setup, teardown, type ProbeResult, type Topology } from './topology.js';

export interface ComplianceOptions {
  /** Label, e.g. 'nftables'. */
  name: string;
  make: () => Dataplane;
  /** Breaks the backend's kernel state behind its back (so the next incremental apply fails). */
  tamper: (netns: string) => Promise<void>;
  /** Namespace prefix (must be the caller's assigned prefix). */
  prefix: string;
}

const VIP = '10.96.0.10';
/** The same service's IPv6 VIP (routed out of be0 in the sandbox, topology.ts). */
const VIP6 = 'fd7a:96::10';
const PORT = 8080;

function counts(rs: ProbeResult[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of rs) {
    const k = r.ok ? (r.name ?? '?') : `error:${r.err}`;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

export function runDataplaneCompliance(opts: ComplianceOptions): void {
  describe(`dataplane compliance: ${opts.name}`, () => {
    const t: Topology = names(opts.prefix, 5);
    const dp = opts.make();
    const be = (i: number, state: Backend['state'] = 'active', local?: boolean): Backend => {
      const b = t.backends[i - 1]!;
      return { id: `task-${b.name}`, ip: b.ip, state, ...(local !== undefined ? { local } : {}) };
    };
    /** A backend with its IPv6 address too (dual-stack network / IPv6 ingress address). */
    const be6 = (i: number, state: Backend['state'] = 'active', local?: boolean): Backend => ({ ...be(i, state, local), ip6: t.backends[i - 1]!.ip6 });
    const vipOnly = (backends: Backend[]): LbDesired => ({ services: [{ id: 'svc-web', name: 'web', vip: VIP, ports: [{ proto: 'tcp', port: 80, targetPort: PORT }], backends }], ingress: [] });
    const apply = async (d: LbDesired): Promise<void> => {
      await dp.apply(d, { netns: t.lb });
      const diffs = compareKernel(expectedKernel(compile(d), dp.kind), await dp.readKernel({ netns: t.lb }));
      assert.deepEqual(diffs, [], `kernel differs from desired after apply:\n${diffs.join('\n')}`);
    };

    before(async () => {
      await setup(t, PORT);
    });
    after(async () => {
      try {
        await dp.flush({ netns: t.lb });
      } finally {
        await teardown(t);
      }
    });

    test('VIP → 3 backends: 30 connections from the client reach all 3; readKernel matches desired', async () => {
      await apply(vipOnly([be(1), be(2), be(3)]));
      const rs = await many(t.client, VIP, 80, 30);
      const c = counts(rs);
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2', 'b3'], JSON.stringify(c));
      // plain VIP is DNAT only: the task sees the client's address
      assert.ok(rs.every((r) => r.peer === t.clientIp), JSON.stringify(rs.slice(0, 3)));
    });

    test('VIP from a process inside the sandbox itself (output hook) reaches all 3', async () => {
      const c = counts(await many(t.lb, VIP, 80, 30));
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2', 'b3'], JSON.stringify(c));
    });

    test('drain: a draining backend gets no new connections, its established connection keeps working; scale 3 → 1 → 5', async () => {
      const held = await hold(t.client, VIP, 80);
      try {
        const heldOn = held.greeting.split(' ')[0]!;
        const idx = Number(heldOn.slice(1));
        const others = [1, 2, 3].filter((i) => i !== idx);
        // drain the backend holding our connection
        await apply(vipOnly([1, 2, 3].map((i) => be(i, i === idx ? 'draining' : 'active'))));
        const c1 = counts(await many(t.client, VIP, 80, 30));
        assert.deepEqual(Object.keys(c1).sort(), others.map((i) => `b${i}`), JSON.stringify(c1));
        assert.equal(await held.ping(), `${heldOn} echo ping`, 'established flow to a draining task continues');
        // scale to 1: only b1 (others removed after their drain)
        await apply(vipOnly([be(1)]));
        const c2 = counts(await many(t.client, VIP, 80, 20));
        assert.deepEqual(c2, { b1: 20 });
        // scale to 5
        await apply(vipOnly([be(1), be(2), be(3), be(4), be(5)]));
        const c3 = counts(await many(t.client, VIP, 80, 60));
        assert.deepEqual(Object.keys(c3).sort(), ['b1', 'b2', 'b3', 'b4', 'b5'], JSON.stringify(c3));
      } finally {
        held.close();
      }
    });

    test('empty service: connection refused at once (< 500 ms), from the client and from inside the sandbox', async () => {
      await apply(vipOnly([]));
      for (const ns of [t.client, t.lb]) {
        const rs = await many(ns, VIP, 80, 5, 3000);
        for (const r of rs) {
          assert.equal(r.err, 'ECONNREFUSED', `${ns}: ${JSON.stringify(r)}`);
          assert.ok(r.ms < 500, `${ns}: refused after ${r.ms} ms`);
        }
      }
      // all tasks draining = no backend for new connections: also refused
      await apply(vipOnly([be(1, 'draining')]));
      const rs = await many(t.client, VIP, 80, 3, 3000);
      assert.ok(rs.every((r) => r.err === 'ECONNREFUSED' && r.ms < 500), JSON.stringify(rs));
    });

    test('ingress cluster policy: published port on the sandbox address, DNAT + SNAT, all tasks', async () => {
      await apply({ services: [], ingress: [{ service: 'svc-web', publishedPort: 80, proto: 'tcp', targetPort: PORT, policy: 'cluster', backends: [be(1), be(2), be(3)] }] });
      const rs = await many(t.client, t.lbClientSideIp, 80, 30);
      const c = counts(rs);
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2', 'b3'], JSON.stringify(c));
      assert.ok(rs.every((r) => r.peer === t.lbBackendSideIp), `SNAT expected: ${JSON.stringify(rs.slice(0, 3))}`);
    });

    test('ingress local policy: only local tasks, the task sees the client\'s real source address', async () => {
      await apply({ services: [], ingress: [
        { service: 'svc-web', publishedPort: 81, proto: 'tcp', targetPort: PORT, policy: 'local', backends: [be(1, 'active', false), be(2, 'active', true), be(3, 'active', false)] },
        { service: 'svc-none', publishedPort: 82, proto: 'tcp', targetPort: PORT, policy: 'local', backends: [be(1, 'active', false)] },
      ] });
      const rs = await many(t.client, t.lbClientSideIp, 81, 20);
      assert.deepEqual(counts(rs), { b2: 20 });
      assert.ok(rs.every((r) => r.peer === t.clientIp), `client IP expected: ${JSON.stringify(rs.slice(0, 3))}`);
      const none = await many(t.client, t.lbClientSideIp, 82, 2, 3000);
      assert.ok(none.every((r) => r.err === 'ECONNREFUSED' && r.ms < 500), `no local task → refused: ${JSON.stringify(none)}`);
    });

    test('IPv6 published ports (issue 19 §2): cluster reaches every backend over IPv6, masqueraded; local keeps the client\'s IPv6 address; no local task → refused at once', async () => {
      const d: LbDesired = { services: [], ingress: [
        { service: 'svc-web6', publishedPort: 84, proto: 'tcp', targetPort: PORT, policy: 'cluster', backends: [be6(1), be6(2), be6(3)] },
        { service: 'svc-loc6', publishedPort: 85, proto: 'tcp', targetPort: PORT, policy: 'local', backends: [be6(1, 'active', false), be6(2, 'active', true), be6(3, 'active', false)] },
        { service: 'svc-none6', publishedPort: 86, proto: 'tcp', targetPort: PORT, policy: 'local', backends: [be6(1, 'active', false)] },
      ] };
      await apply(d); // readKernel holds the ingress6 frontends exactly (no drift after a sync)
      assert.deepEqual((await dp.readKernel({ netns: t.lb })).frontends.filter((f) => f.key.startsWith('ingress6')).map((f) => f.key), ['ingress6 tcp 84', 'ingress6 tcp 85', 'ingress6 tcp 86']);
      const rs = await many(t.client, t.lbClientSideIp6, 84, 30);
      const c = counts(rs);
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2', 'b3'], JSON.stringify(c));
      assert.ok(rs.every((r) => r.peer === t.lbBackendSideIp6), `SNAT to the sandbox's IPv6 address expected: ${JSON.stringify(rs.slice(0, 3))}`);
      const c4 = counts(await many(t.client, t.lbClientSideIp, 84, 30));
      assert.deepEqual(Object.keys(c4).sort(), ['b1', 'b2', 'b3'], `the same publish over IPv4 still balances: ${JSON.stringify(c4)}`);
      const loc = await many(t.client, t.lbClientSideIp6, 85, 20);
      assert.deepEqual(counts(loc), { b2: 20 });
      assert.ok(loc.every((r) => r.peer === t.clientIp6), `the client's IPv6 address expected: ${JSON.stringify(loc.slice(0, 3))}`);
      const none = await many(t.client, t.lbClientSideIp6, 86, 2, 3000);
      assert.ok(none.every((r) => r.err === 'ECONNREFUSED' && r.ms < 500), `no local task → refused: ${JSON.stringify(none)}`);
      // an endpoint change (b3 drains, b4 joins) is an incremental apply; the kernel follows it exactly
      const d2: LbDesired = { services: [], ingress: [{ ...d.ingress[0]!, backends: [be6(1), be6(2), be6(3, 'draining'), be6(4)] }, d.ingress[1]!, d.ingress[2]!] };
      await apply(d2);
      const c2 = counts(await many(t.client, t.lbClientSideIp6, 84, 30));
      assert.deepEqual(Object.keys(c2).sort(), ['b1', 'b2', 'b4'], JSON.stringify(c2));
    });

    test('IPv6 VIP: the client reaches every backend; a task of the service (holding the VIP on lo, as under IPVS) reaches itself and the others (self-masquerade)', async () => {
      const svc6 = (backends: Backend[]): LbDesired => ({ services: [{ id: 'svc-v6', name: 'v6', vip: VIP, vip6: VIP6, ports: [{ proto: 'tcp', port: 80, targetPort: PORT }], backends }], ingress: [] });
      await apply(svc6([be6(1), be6(2), be6(3)]));
      const rs = await many(t.client, VIP6, 80, 30);
      assert.deepEqual(Object.keys(counts(rs)).sort(), ['b1', 'b2', 'b3'], JSON.stringify(counts(rs)));
      assert.ok(rs.every((r) => r.peer === t.clientIp6), `a VIP is DNAT only: ${JSON.stringify(rs.slice(0, 3))}`);
      // The sandbox plays a task of v6: it serves PORT itself and is a backend. Under IPVS every task
      // of the network holds the VIP on lo, so b1 and b2 get it too: a connection that left the
      // sandbox with the VIP as its source would be answered by b1/b2 to themselves (a hang).
      await serve(t, t.lb, 'self', PORT);
      for (const b of t.backends.slice(0, 2)) await realExec.check('ip', ['-n', b.ns, 'addr', 'replace', `${VIP6}/128`, 'dev', 'lo'], {});
      await apply(svc6([{ id: 'task-self', ip: t.lbBackendSideIp, ip6: t.lbBackendSideIp6, state: 'active' }, be6(1), be6(2)]));
      const own = await many(t.lb, VIP6, 80, 30, 3000);
      const co = counts(own);
      assert.deepEqual(Object.keys(co).sort(), ['b1', 'b2', 'self'], `every request answered, by the task itself and the others: ${JSON.stringify(co)}`);
      assert.ok(own.every((r) => r.name === 'self' || r.peer === t.lbBackendSideIp6), `to another task the source is the task's own address, never the VIP: ${JSON.stringify(own.filter((r) => r.name !== 'self').slice(0, 3))}`);
    });

    test('balancing (issue 19): round-robin is even, source-hash sticks, a 90/10 weight splits, locality node spills when drained', async () => {
      const svc = (lb: NonNullable<LbDesired['services'][0]['lb']>, backends: Backend[]): LbDesired => ({ services: [{ ...vipOnly(backends).services[0]!, lb }], ingress: [] });
      await apply(svc({ algorithm: 'round-robin' }, [be(1), be(2), be(3)]));
      assert.deepEqual(counts(await many(t.client, VIP, 80, 30)), { b1: 10, b2: 10, b3: 10 }, 'round-robin: 10 each');
      await apply(svc({ algorithm: 'source-hash' }, [be(1), be(2), be(3)]));
      assert.equal(Object.keys(counts(await many(t.client, VIP, 80, 20))).length, 1, 'source-hash: one client, one task');
      await apply({ services: [{ ...vipOnly([{ ...be(1), weight: 90 }, { ...be(2), weight: 10 }]).services[0]! }], ingress: [] });
      const w = counts(await many(t.client, VIP, 80, 200));
      // IPVS wrr: exactly 20; nftables numgen random: binomial(200, 0.1), ±3 sd = 8..32
      assert.ok((w.b2 ?? 0) >= 8 && (w.b2 ?? 0) <= 32 && (w.b1 ?? 0) + (w.b2 ?? 0) === 200, `90/10 weights: ${JSON.stringify(w)}`);
      const ing = (b2: Backend['state']): LbDesired => ({ services: [], ingress: [{ service: 'svc-loc', publishedPort: 83, proto: 'tcp', targetPort: PORT, policy: 'cluster', lb: { locality: 'node' }, backends: [be(1, 'active', false), be(2, b2, true), be(3, 'active', false)] }] });
      await apply(ing('active'));
      assert.deepEqual(counts(await many(t.client, t.lbClientSideIp, 83, 20)), { b2: 20 }, 'locality node: the local task only');
      await apply(ing('draining'));
      const spill = counts(await many(t.client, t.lbClientSideIp, 83, 30));
      assert.deepEqual(Object.keys(spill).sort(), ['b1', 'b3'], `local task drained: spill to the others: ${JSON.stringify(spill)}`);
    });

    test('full resyncs under a request loop lose no request, and an established connection survives them', async () => {
      // What a drift repair or a failure's retry does on a live node. A full resync that clears the
      // table first (IPVS `-C`) refuses new connections for a moment and, with expire_nodest_conn=1,
      // drops established ones; it must change only what differs (nftables: one atomic table swap).
      // The VIP (3 backends) and a published port (2) share port 80 here: VIP requests must reach
      // the VIP's own backends, never the published port's (IPVS: its mark table once let the
      // ingress mark override the VIP's, since the VIP is a local address).
      const d: LbDesired = {
        services: vipOnly([be(1), be(2), be(3)]).services,
        ingress: [{ service: 'svc-web', publishedPort: 80, proto: 'tcp', targetPort: PORT, policy: 'cluster', backends: [be(1), be(2)] }],
      };
      await apply(d);
      const held = await hold(t.client, VIP, 80);
      const heldOn = held.greeting.split(' ')[0]!;
      let rs: ProbeResult[] = [];
      const modes: string[] = [];
      try {
        const l = await loop(t.client, VIP, 80);
        try {
          for (let i = 0; i < 4; i++) {
            dp.requestFullResync({ netns: t.lb });
            modes.push((await dp.apply(d, { netns: t.lb })).mode);
          }
        } finally {
          rs = await l.stop();
        }
        assert.equal(await held.ping(), `${heldOn} echo ping`, 'the connection established before the resyncs still works');
      } finally {
        held.close();
      }
      assert.deepEqual(modes, ['full', 'full', 'full', 'full']);
      const c = counts(rs);
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2', 'b3'], `every request answered by one of the VIP's 3 backends (${rs.length} in the loop): ${JSON.stringify(c)}`);
      assert.deepEqual(compareKernel(expectedKernel(compile(d), dp.kind), await dp.readKernel({ netns: t.lb })), []);
      console.log(`# ${opts.name}: 4 full resyncs under a loop of ${rs.length} requests: ${JSON.stringify(c)}`);
    });

    test('VIP and ingress together, then a forced failure: the next apply is a full resync that repairs the kernel', async () => {
      const both = (n: number): LbDesired => ({
        services: vipOnly(Array.from({ length: n }, (_, i) => be(i + 1))).services,
        ingress: [{ service: 'svc-web', publishedPort: 80, proto: 'tcp', targetPort: PORT, policy: 'cluster', backends: [be(1), be(2)] }],
      });
      await apply(both(3));
      await opts.tamper(t.lb);
      await assert.rejects(dp.apply(both(2), { netns: t.lb }), (e: unknown) => isMeshError(e) && e.code === 'MESHD_EXEC_FAILED');
      const r = await dp.apply(both(2), { netns: t.lb });
      assert.equal(r.mode, 'full');
      assert.deepEqual(compareKernel(expectedKernel(compile(both(2)), dp.kind), await dp.readKernel({ netns: t.lb })), []);
      const c = counts(await many(t.client, VIP, 80, 30));
      assert.deepEqual(Object.keys(c).sort(), ['b1', 'b2'], JSON.stringify(c));
      assert.equal((await dp.apply(both(2), { netns: t.lb })).mode, 'noop');
    });

    test('invalid desired state is refused before touching the kernel', async () => {
      const before = await dp.readKernel({ netns: t.lb });
      await assert.rejects(dp.apply(vipOnly([{ id: 'x', ip: '999.1.1.1', state: 'active' }]), { netns: t.lb }), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
      assert.deepEqual(await dp.readKernel({ netns: t.lb }), before);
    });

    test('flush removes everything', async () => {
      await dp.flush({ netns: t.lb });
      assert.deepEqual((await dp.readKernel({ netns: t.lb })).frontends, []);
      assert.equal((await dp.apply(vipOnly([be(1)]), { netns: t.lb })).mode, 'full');
    });
  });
}
