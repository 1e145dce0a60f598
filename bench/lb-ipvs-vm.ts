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
 *
 * The peer (BENCH_IPT_PEERS, default `nft:cold,resync,one`): a `;` list of `backend:metrics`, backend
 * `nft` (Debian's iptables-restore, the nf_tables backend) or `legacy` (iptables-legacy-restore; needs
 * ip_tables loaded: MESHD_VM_MODS=...,ip_tables,iptable_nat). Each metric of the `iptables` figures is
 * the FASTEST peer that measured it (so the IPVS ratio stays conservative); `iptablesPeers` keeps
 * every peer's own figures and `iptablesPeer` says which one each metric came from. Why two: at 10k
 * services × 10 endpoints (110k chains, 310k rules) iptables-nft-restore 1.8.9 spends most of its CPU
 * in chain-name lookups (strcmp/strlen/nftnl_chain_get_data: ~57% of samples on this host, cost
 * superlinear — 0.5/1.2/5.0/11.9 s for 1k/2k/5k/10k natively) and peaks at ~700 MB RSS; a cold 10k
 * restore ran past 9 min in the guest. The legacy backend restores the same input faster (8.3 s
 * natively, ~390 MB) but is slower for the one-endpoint --noflush change (it reads and rewrites the
 * whole table: 2.3 s vs 1.1 s natively), hence the per-metric choice: `legacy:cold,resync;nft:cold,one`.
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
  await dropNs(ns, () => (dp.kind === 'ipvs' ? realExec.run('ipvsadm', ['-C'], { netns: ns }) : realExec.run('nft', ['flush', 'ruleset'], { netns: ns })));
  return { cold: r1(cold.durationMs), resync: r1(resync.durationMs), one: r1(median(one)) };
}

type Metric = keyof VmSyncFigures;
type PeerBackend = 'nft' | 'legacy';
const PEER_CMD: Record<PeerBackend, string> = { nft: 'iptables-restore', legacy: 'iptables-legacy-restore' };

/** BENCH_IPT_PEERS parsed: which backends run which metrics (`resync` and `one` need the cold restore first). */
export function parsePeers(spec: string): Array<{ backend: PeerBackend; metrics: Set<Metric> }> {
  return spec.split(';').filter(Boolean).map((part) => {
    const [b, m = 'cold,resync,one'] = part.split(':');
    if (b !== 'nft' && b !== 'legacy') throw new Error(`BENCH_IPT_PEERS: unknown backend ${JSON.stringify(b)} (nft | legacy)`);
    const metrics = new Set(m.split(',').map((x) => x.trim()));
    for (const x of metrics) if (x !== 'cold' && x !== 'resync' && x !== 'one') throw new Error(`BENCH_IPT_PEERS: unknown metric ${JSON.stringify(x)} (cold | resync | one)`);
    return { backend: b, metrics: metrics as Set<Metric> };
  });
}
const PEERS = parsePeers(process.env.BENCH_IPT_PEERS ?? 'nft:cold,resync,one');

/**
 * One peer backend: a full restore (always: the other metrics need the ruleset; timed as `cold`),
 * optionally a second full restore over it (`resync`) and kube-proxy's minimal --noflush change
 * (`one`). Metrics not asked for are absent.
 */
async function iptablesRun(ns: string, n: number, backend: PeerBackend, metrics: Set<Metric>): Promise<Partial<VmSyncFigures>> {
  await freshNs(ns);
  const cmd = PEER_CMD[backend];
  const svcs = services(n);
  const full = iptFull(svcs);
  const out: Partial<VmSyncFigures> = {};
  progress(`${cmd} ${n}: cold full restore`);
  out.cold = r1(await timed(() => realExec.check(cmd, ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 })));
  progress(`${cmd} ${n}: cold ${out.cold} ms`);
  if (metrics.has('resync')) {
    out.resync = r1(await timed(() => realExec.check(cmd, ['-w'], { input: full, netns: ns, timeoutMs: 1_800_000 })));
    progress(`${cmd} ${n}: resync ${out.resync} ms`);
  }
  if (metrics.has('one')) {
    const one: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const k = Math.floor((n * (r + 1)) / (REPS + 1));
      const oldIp = svcs[k]!.eps[0]!;
      svcs[k] = { ...svcs[k]!, eps: [ip4(220, k * 16 + r + 1), ...svcs[k]!.eps.slice(1)] };
      one.push(await timed(() => realExec.check(cmd, ['-w', '--noflush'], { input: iptOneChange(svcs, k, oldIp), netns: ns, timeoutMs: 600_000 })));
      progress(`${cmd} ${n}: --noflush change ${r + 1}/${REPS}: ${r1(one[r]!)} ms`);
    }
    out.one = r1(median(one));
  }
  if (!metrics.has('cold')) delete out.cold;
  await dropNs(ns, () => realExec.run(backend === 'legacy' ? 'iptables-legacy' : 'iptables', ['-t', 'nat', '-F'], { netns: ns }).then(() => realExec.run(backend === 'legacy' ? 'iptables-legacy' : 'iptables', ['-t', 'nat', '-X'], { netns: ns })));
  return out;
}

/**
 * Deletes a namespace after emptying it synchronously: `ip netns del` returns at once and the kernel
 * tears a namespace holding 10k services down in a worker, which under TCG ran into the next
 * column's timed region. The flush is not timed.
 */
async function dropNs(ns: string, flush: () => Promise<unknown>): Promise<void> {
  const t0 = Date.now();
  await flush();
  await realExec.run('ip', ['netns', 'del', ns]);
  progress(`${ns}: emptied and deleted in ${((Date.now() - t0) / 1000).toFixed(1)} s (not timed)`);
}

/** The peer's figures: each metric from the fastest backend that measured it. */
async function peerRun(n: number): Promise<{ iptables: VmSyncFigures; iptablesPeer: Record<Metric, string>; iptablesPeers: Record<string, Partial<VmSyncFigures>> }> {
  const per: Record<string, Partial<VmSyncFigures>> = {};
  for (const p of PEERS) per[PEER_CMD[p.backend]] = await iptablesRun(`lbv-ipt-${p.backend}`, n, p.backend, p.metrics);
  const pick = (m: Metric): [string, number] => {
    const c = Object.entries(per).filter(([, f]) => f[m] !== undefined).sort((a, b) => a[1][m]! - b[1][m]!)[0];
    if (!c) throw new Error(`BENCH_IPT_PEERS: no peer measures ${m}`);
    return [c[0], c[1][m]!];
  };
  const [cold, resync, one] = (['cold', 'resync', 'one'] as const).map(pick);
  return { iptables: { cold: cold![1], resync: resync![1], one: one![1] }, iptablesPeer: { cold: cold![0], resync: resync![0], one: one![0] }, iptablesPeers: per };
}

/** A progress line stamped with seconds since this script started (guest clock). */
const T0 = Date.now();
function progress(what: string): void {
  console.log(`# +${((Date.now() - T0) / 1000).toFixed(1)} s ${what}`);
}

async function main(): Promise<void> {
  if (!existsSync('/proc/net/ip_vs')) throw new Error('lb-ipvs-vm: /proc/net/ip_vs is missing — run inside the VM (native-scripts/vm/run.sh)');
  if (PEERS.some((p) => p.backend === 'legacy') && !existsSync('/proc/net/ip_tables_names')) throw new Error('lb-ipvs-vm: the legacy peer needs ip_tables (/proc/net/ip_tables_names is missing): boot the VM with MESHD_VM_MODS=<the test modules>,ip_tables,iptable_nat');
  const out: Record<string, { ipvs: VmSyncFigures; nftables: VmSyncFigures } & Awaited<ReturnType<typeof peerRun>>> = {};
  for (const n of SIZES) {
    const t0 = Date.now();
    const ipvs = await dataplaneRun(new IpvsDataplane(benchExec), 'lbv-ipvs', n);
    const nftables = await dataplaneRun(new NftablesDataplane(benchExec), 'lbv-nft', n);
    out[String(n)] = { ipvs, nftables, ...(await peerRun(n)) };
    console.log(`# ${n} services × ${EPS} endpoints in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    console.log(`BENCH-IPVS-VM-SIZE ${JSON.stringify({ n, ...out[String(n)] })}`);
  }
  console.log(`BENCH-IPVS-VM ${JSON.stringify({ endpointsPerService: EPS, reps: REPS, peers: process.env.BENCH_IPT_PEERS ?? 'nft:cold,resync,one', sizes: out })}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
