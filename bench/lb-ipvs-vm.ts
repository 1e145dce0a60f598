/**
 * The IPVS column of `npm run bench -- lb`, measured INSIDE the IPVS VM (Debian's stock kernel under
 * qemu TCG; this machine's kernel has no ip_vs): for each size, N services × EPS endpoints synced
 * through IpvsDataplane (cold full sync, full resync over the existing table — a read-back and
 * diff since issue 14 — and a one-endpoint change), and in the same run through NftablesDataplane
 * and a kube-proxy-style iptables-restore, each in its own namespace. Under software emulation the
 * absolute times mean little; only the ratios between the three within this one run count.
 *
 * Run by bench/lb.ts through native-scripts/vm/run.sh; prints one line `BENCH-IPVS-VM {json}`
 * (the guest's filesystem is read-only: the host writes the results file). Namespaces lbv-* live
 * in the VM's own kernel.
 */
import { existsSync } from 'node:fs';
import { IpvsDataplane } from '../src/adapters/dataplane/ipvs.js';
import { NftablesDataplane } from '../src/adapters/dataplane/nftables.js';
import { realExec } from '../src/adapters/exec.js';
import type { Dataplane } from '../src/adapters/dataplane/types.js';
import type { LbDesired } from '../src/core/lb/model.js';
import { desired, EPS, freshNs, iptFull, iptOneChange, ip4, median, r1, services, timed, type Svc } from './lib/lb-sync.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 5);

export interface VmSyncFigures {
  /** Wall ms: cold full sync, full resync over the existing table, median one-endpoint change. */
  cold: number;
  resync: number;
  one: number;
}

/** One backend: cold, forced full resync, REPS one-endpoint changes (each a fresh service object, as the agent does). */
async function dataplaneRun(dp: Dataplane, ns: string, n: number): Promise<VmSyncFigures> {
  await freshNs(ns);
  const svcs: Svc[] = services(n);
  let current: LbDesired = desired(svcs);
  const cold = await dp.apply(current, { netns: ns });
  dp.requestFullResync({ netns: ns });
  const resync = await dp.apply(current, { netns: ns });
  if (resync.mode !== 'full') throw new Error(`${dp.kind}: expected a full resync, got ${resync.mode}`);
  await dp.apply(current, { netns: ns });
  const one: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const k = Math.floor((n * (r + 1)) / (REPS + 1));
    const s = { ...svcs[k]!, eps: [ip4(220, k * 16 + r + 1), ...svcs[k]!.eps.slice(1)] };
    svcs[k] = s;
    const next = desired([s]).services[0]!;
    const list = [...current.services];
    list[k] = { ...next, id: `svc-${k}`, name: `svc-${k}`, backends: next.backends.map((b, j) => ({ ...b, id: `t-${k}-${j}` })) };
    current = { services: list, ingress: [] };
    const res = await dp.apply(current, { netns: ns });
    if (res.mode !== 'incremental' || res.changed !== 1) throw new Error(`${dp.kind}: expected an incremental change of 1 frontend, got ${res.mode}/${res.changed}`);
    one.push(res.durationMs);
  }
  const held = (await dp.readKernel({ netns: ns })).frontends.length;
  if (held !== n) throw new Error(`${dp.kind} holds ${held} frontends, want ${n}`);
  await realExec.run('ip', ['netns', 'del', ns]);
  return { cold: r1(cold.durationMs), resync: r1(resync.durationMs), one: r1(median(one)) };
}

/** The peer: full iptables-restore twice (cold, over existing), then kube-proxy's minimal --noflush change. */
async function iptablesRun(ns: string, n: number): Promise<VmSyncFigures> {
  await freshNs(ns);
  const svcs = services(n);
  const full = iptFull(svcs);
  const cold = await timed(() => realExec.check('iptables-restore', ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 }));
  const resync = await timed(() => realExec.check('iptables-restore', ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 }));
  const one: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const k = Math.floor((n * (r + 1)) / (REPS + 1));
    const oldIp = svcs[k]!.eps[0]!;
    svcs[k] = { ...svcs[k]!, eps: [ip4(220, k * 16 + r + 1), ...svcs[k]!.eps.slice(1)] };
    one.push(await timed(() => realExec.check('iptables-restore', ['-w', '--noflush'], { input: iptOneChange(svcs, k, oldIp), netns: ns, timeoutMs: 600_000 })));
  }
  await realExec.run('ip', ['netns', 'del', ns]);
  return { cold: r1(cold), resync: r1(resync), one: r1(median(one)) };
}

async function main(): Promise<void> {
  if (!existsSync('/proc/net/ip_vs')) throw new Error('lb-ipvs-vm: /proc/net/ip_vs is missing — run inside the VM (native-scripts/vm/run.sh)');
  const out: Record<string, { ipvs: VmSyncFigures; nftables: VmSyncFigures; iptables: VmSyncFigures }> = {};
  for (const n of SIZES) {
    const t0 = Date.now();
    const ipvs = await dataplaneRun(new IpvsDataplane(), 'lbv-ipvs', n);
    const nftables = await dataplaneRun(new NftablesDataplane(), 'lbv-nft', n);
    const iptables = await iptablesRun('lbv-ipt', n);
    out[String(n)] = { ipvs, nftables, iptables };
    console.log(`# ${n} services × ${EPS} endpoints in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(out[String(n)])}`);
  }
  console.log(`BENCH-IPVS-VM ${JSON.stringify({ endpointsPerService: EPS, reps: REPS, sizes: out })}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
