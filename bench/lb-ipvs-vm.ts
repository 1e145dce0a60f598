/**
 * The IPVS column of `npm run bench -- lb`, measured INSIDE the IPVS VM (Debian's stock kernel under
 * qemu TCG; this machine's kernel has no ip_vs): for each size, N services × EPS endpoints synced
 * through IpvsDataplane (cold full sync, full resync over the existing table — a read-back and
 * diff since issue 14 — and a one-endpoint change), and in the same run through NftablesDataplane
 * and a kube-proxy-style iptables-restore, each in its own namespace. Under software emulation the
 * absolute times mean little; only the ratios between the three within this one run count.
 *
 * Run by bench/lb.ts through native-scripts/vm/run.sh; prints one line `BENCH-IPVS-VM-SIZE {json}`
 * per size as soon as it is measured (so a run cut off by the VM timeout still yields the sizes it
 * finished) and `BENCH-IPVS-VM {json}` at the end (the guest's filesystem is read-only: the host
 * writes the results file). Phase lines (`# ...`) show progress: 10k services take minutes under
 * emulation. Namespaces lbv-* live in the VM's own kernel.
 */
import { existsSync } from 'node:fs';
import { IpvsDataplane } from '../src/adapters/dataplane/ipvs.js';
import { NftablesDataplane } from '../src/adapters/dataplane/nftables.js';
import { realExec } from '../src/adapters/exec.js';
import type { Dataplane } from '../src/adapters/dataplane/types.js';
import type { Exec } from '../src/adapters/exec.js';
import type { LbDesired } from '../src/core/lb/model.js';
import { desired, EPS, freshNs, iptFull, iptOneChange, ip4, median, r1, services, timed, type Svc } from './lib/lb-sync.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 5);
/**
 * The dataplanes' exec bound is 30 s per program (sized for real hosts); under TCG one `ipvsadm -R`
 * of 10k services × 10 reals takes longer than that (it was killed at 30 s: exit 128). The bench
 * measures how long a sync takes, so its programs get the same 30 min bound as the peer's restores.
 */
const BENCH_EXEC_TIMEOUT_MS = 1_800_000;
const benchExec: Exec = {
  run: (cmd, args, opts = {}) => realExec.run(cmd, args, { timeoutMs: BENCH_EXEC_TIMEOUT_MS, ...opts }),
  check: (cmd, args, opts = {}) => realExec.check(cmd, args, { timeoutMs: BENCH_EXEC_TIMEOUT_MS, ...opts }),
};

export interface VmSyncFigures {
  /** Wall ms: cold full sync, full resync over the existing table, median one-endpoint change. */
  cold: number;
  resync: number;
  one: number;
}

/** One backend: cold, forced full resync, REPS one-endpoint changes (each a fresh service object, as the agent does). */
async function dataplaneRun(dp: Dataplane, ns: string, n: number): Promise<VmSyncFigures> {
  await freshNs(ns);
  progress(`${dp.kind} ${n}: cold full sync`);
  const svcs: Svc[] = services(n);
  let current: LbDesired = desired(svcs);
  const cold = await dp.apply(current, { netns: ns });
  progress(`${dp.kind} ${n}: cold ${r1(cold.durationMs)} ms; full resync`);
  dp.requestFullResync({ netns: ns });
  const resync = await dp.apply(current, { netns: ns });
  progress(`${dp.kind} ${n}: resync ${r1(resync.durationMs)} ms; ${REPS} one-endpoint changes`);
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
  progress(`iptables-restore ${n}: cold full restore`);
  const cold = await timed(() => realExec.check('iptables-restore', ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 }));
  const resync = await timed(() => realExec.check('iptables-restore', ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 }));
  progress(`iptables-restore ${n}: cold ${r1(cold)} ms, resync ${r1(resync)} ms; ${REPS} --noflush changes`);
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

/** A progress line stamped with seconds since this script started (guest clock). */
const T0 = Date.now();
function progress(what: string): void {
  console.log(`# +${((Date.now() - T0) / 1000).toFixed(1)} s ${what}`);
}

async function main(): Promise<void> {
  if (!existsSync('/proc/net/ip_vs')) throw new Error('lb-ipvs-vm: /proc/net/ip_vs is missing — run inside the VM (native-scripts/vm/run.sh)');
  const out: Record<string, { ipvs: VmSyncFigures; nftables: VmSyncFigures; iptables: VmSyncFigures }> = {};
  for (const n of SIZES) {
    const t0 = Date.now();
    const ipvs = await dataplaneRun(new IpvsDataplane(benchExec), 'lbv-ipvs', n);
    const nftables = await dataplaneRun(new NftablesDataplane(benchExec), 'lbv-nft', n);
    const iptables = await iptablesRun('lbv-ipt', n);
    out[String(n)] = { ipvs, nftables, iptables };
    console.log(`# ${n} services × ${EPS} endpoints in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    console.log(`BENCH-IPVS-VM-SIZE ${JSON.stringify({ n, ...out[String(n)] })}`);
  }
  console.log(`BENCH-IPVS-VM ${JSON.stringify({ endpointsPerService: EPS, reps: REPS, sizes: out })}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
