/**
 * Overlay benchmark (`npm run bench -- overlay` → bench/results/overlay.json):
 *  1. iperf3 task-to-task across the overlay vs the same two hosts over the underlay directly (1 and 4
 *     streams): the CPU both iperf3 processes spend per GB moved (checked; overlay / underlay), and the
 *     rate (informative: on 2 shared CPUs it is each side's CPU share, see main).
 *  2. CPU to program BENCH_ENDPOINTS (default 500) remote endpoints (FDB + neighbour) into an empty
 *     sandbox through our reconcile path (read back → diff → one ip batch + one bridge batch → verify)
 *     vs the naive path of one `bridge fdb` + one `ip neigh` process per entry; and the CPU of a reconcile
 *     when converged. CPU, not wall (bench/lib/cpu.ts: this thread + every child process): these rows are
 *     costs, and on this shared machine a wall clock mostly measured how long the ~1,000 spawns waited for
 *     a CPU. The wall times of the same runs are kept in `wallMs`. A warm-up program and converged reconcile
 *     run first and are discarded (last session's converged figures fell 26 → 16 ms over three rounds: the
 *     JIT, not the reconcile). Ours programs PROGRAM_RUNS times per round (median); the converged reconcile
 *     runs NOOP_RUNS times in one window per round — the children's CPU is known to ± one 10 ms tick per
 *     window, so the rows' floors are 10 ms and 10/NOOP_RUNS ms.
 * Both parts run their two sides interleaved in BENCH_ROUNDS rounds (default 3; first side alternating,
 * bench/lib/rounds.ts); rows carry the median per-round ratio and its min–max, and a result whose ratios
 * spread more than 1.5× (ms rows: beyond their ±FLOOR_MS) is written to overlay.rejected.json instead. BENCH_SECONDS (default 2) per iperf3
 * run. The defaults keep the bench at about its earlier length (~80 s: 3 × 2 s × 4 iperf3 runs, 3 × 1,000
 * naive processes).
 * Everything runs inside `mtov-bn-*` namespaces, removed at the end (also on failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realExec } from '../src/adapters/exec.js';
import { FakeVxlanGuard } from '../test/helpers/fake-vxlan-guard.js';
import { macFromIp } from '../src/core/ipam/addr.js';
import type { OverlayNetwork, RemoteEndpoint } from '../src/core/overlay/model.js';
import { sandboxName } from '../src/core/overlay/model.js';
import { CHILD_TICK_MS, childrenCpuMs, threadCpuMs } from './lib/cpu.js';
import { cpuGroup, type CpuGroup } from './lib/cgroup-cpu.js';
import { interleave, median } from './lib/rounds.js';
import { pairedRow, snapshot, writeResults, type BenchRow } from './lib/results.js';
import { attachment, endpoint, makeNode } from '../test/integration/overlay/helpers.js';
import { eventually, labUp } from '../test/integration/overlay/lab.js';

const PREFIX = 'mtov-bn-';
const START = snapshot();
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const N_ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Programs from empty per round on our side (the round's figure is their median: ~40 ms of CPU, within 10× its ±10 ms floor). */
const PROGRAM_RUNS = 5;
/** Converged reconciles per round, timed in ONE window (so the children's ±10 ms tick is spread over all of them). */
const NOOP_RUNS = 40;
const r2 = (x: number): number => Math.round(x * 100) / 100;
/** CPU ms per 10^9 bytes received. */
const perGb = (x: Iperf): number => Math.round((x.cpuMs / x.bytes) * 1e9 * 10) / 10;

/** One window's cost: CPU of this thread + of the children reaped in it (ms, per run), and its wall time per run. */
interface Cost { cpuMs: number; wallMs: number }
async function cost(f: () => Promise<void>, runs = 1): Promise<Cost> {
  const t0 = process.hrtime.bigint();
  const c0 = threadCpuMs() + childrenCpuMs();
  await f();
  const cpu = threadCpuMs() + childrenCpuMs() - c0;
  return { cpuMs: r2(cpu / runs), wallMs: r2(Number(process.hrtime.bigint() - t0) / 1e6 / runs) };
}

/** One iperf3 run: the rate, the bytes the server received, and the CPU both iperf3 processes used for it. */
interface Iperf { mbps: number; bytes: number; cpuMs: number }

/**
 * iperf3 server in `serverNs` bound to `ip`, client in `clientNs`, both in the CPU group (bench/lib/cgroup-cpu.ts:
 * exact CPU of the two processes and of nothing else, ns resolution). The group's counter is read once the
 * server is listening and again after both have exited, so it holds the transfer (and the server's exit).
 */
async function throughput(group: CpuGroup, serverNs: string, clientNs: string, ip: string, streams: number): Promise<Iperf> {
  const srv: ChildProcess = spawn('nsenter', [`--net=/run/netns/${serverNs}`, 'sh', '-c', 'echo $$ > "$0" && exec "$@"', group.procs, 'iperf3', '-s', '-B', ip], { stdio: 'ignore' });
  try {
    const up = await eventually(async () => (await realExec.run('ss', ['-ltnH', 'sport = :5201'], { netns: serverNs })).stdout.includes('5201'), 5000, 50);
    if (!up) throw new Error(`iperf3 server in ${serverNs} did not come up`);
    const c0 = group.usageMs();
    const out = await group.exec.check('iperf3', ['-c', ip, '-t', String(SECONDS), '-P', String(streams), '-J'], { netns: clientNs, timeoutMs: (SECONDS + 20) * 1000 });
    srv.kill('SIGKILL');
    const gone = await eventually(async () => srv.exitCode !== null || srv.signalCode !== null, 2000, 20);
    if (!gone) throw new Error(`iperf3 server in ${serverNs} did not exit after SIGKILL`);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
    return { mbps: Math.round(j.end.sum_received.bits_per_second / 1e6), bytes: j.end.sum_received.bytes, cpuMs: group.usageMs() - c0 };
  } finally {
    if (srv.exitCode === null && srv.signalCode === null) srv.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const lab = await labUp(PREFIX, 2, [], 214);
  const rows: BenchRow[] = [];
  const extra: Record<string, unknown> = {};
  try {
    const [n1, n2] = lab.hosts.map((h) => makeNode(PREFIX, h)) as [ReturnType<typeof makeNode>, ReturnType<typeof makeNode>];
    const net: OverlayNetwork = { id: 'bench01', name: 'bench', vni: 4200, subnet: '10.94.0.0/16', gateway: '10.94.0.1' };
    const members = lab.hosts.map((h) => h.ip);
    const remote = [endpoint(net, '10.94.0.11', n1), endpoint(net, '10.94.0.12', n2)];
    for (const n of [n1, n2]) await n.overlay().reconcile({ networks: [net], remote, members });
    const sleeper = ['sh', '-c', 'while :; do sleep 1; done'];
    await n1.runtime.start({ id: 'bench1', name: 'c', argv: sleeper }, [attachment(n1, net, '10.94.0.11')]);
    await n2.runtime.start({ id: 'bench2', name: 's', argv: sleeper }, [attachment(n2, net, '10.94.0.12')]);
    const t1 = n1.runtime.taskNs('bench1');
    const t2 = n2.runtime.taskNs('bench2');

    // 1. Throughput and its CPU cost: underlay and overlay interleaved, first side alternating (the 2 CPUs are
    // shared). iperf3 (one thread per side, whatever -P) is CPU-bound here: client and server each want a whole
    // CPU, so its rate is each side's CPU share — at load 2 the 4-stream overlay/underlay ratio went 0.45–0.99
    // over three rounds (the old figure: the machine's scheduling). The checked figure is the CPU both iperf3
    // processes spent per GB received (cgroup, exact), which the CPU share does not move; the rate is kept
    // as an informative row. Kernel time in their syscalls (the transmit path, VXLAN encapsulation) is theirs;
    // receive softirqs run on their CPU but are charged to them only where the kernel has no IRQ-time
    // accounting (a stated limit: both paths are measured alike).
    const group = cpuGroup('meshd-bench-overlay');
    const samples: Record<string, number[]> = {};
    try {
      for (const streams of [1, 4]) {
        const got = await interleave(ROUNDS, [
          { name: 'underlay', run: () => throughput(group, n2.host.ns, n1.host.ns, n2.host.ip, streams) },
          { name: 'overlay', run: () => throughput(group, t2, t1, '10.94.0.12', streams) },
        ], { onRound: (r, g) => console.log(`  iperf3 P${streams} round ${r + 1}: underlay ${g.underlay!.mbps} Mbit/s ${perGb(g.underlay!)} ms CPU/GB, overlay ${g.overlay!.mbps} Mbit/s ${perGb(g.overlay!)} ms CPU/GB`) });
        samples[`underlay_P${streams}`] = got.underlay!.map((x) => x.mbps);
        samples[`overlay_P${streams}`] = got.overlay!.map((x) => x.mbps);
        samples[`underlay_P${streams}_cpuMsPerGB`] = got.underlay!.map(perGb);
        samples[`overlay_P${streams}_cpuMsPerGB`] = got.overlay!.map(perGb);
        rows.push(pairedRow(`iperf3 TCP, ${streams} stream(s): CPU per GB moved (client + server), overlay vs underlay`, 'ms/GB', got.overlay!.map(perGb), got.underlay!.map(perGb), 'underlay direct (same hosts)', 'lower',
          { kind: 'rate', note: 'CPU of both iperf3 processes (cpuacct cgroup, exact) per 10^9 bytes received; load-independent, unlike the rate' }));
        rows.push(pairedRow(`iperf3 TCP, ${streams} stream(s), overlay vs underlay`, 'Mbit/s', got.overlay!.map((x) => x.mbps), got.underlay!.map((x) => x.mbps), 'underlay direct (same hosts)', 'higher',
          { note: 'veth/bridge namespaces on one shared 2-CPU machine: both paths are CPU-bound', informative: 'iperf3 is CPU-bound on 2 CPUs: the rate is each side\'s CPU share at that moment; the CPU per GB row is the checked figure' }));
      }
    } finally {
      group.remove();
    }
    extra.samplesMbps = samples;

    // 2. Programming N remote endpoints into an empty sandbox, ours and naive interleaved.
    const many: RemoteEndpoint[] = [...remote];
    for (let i = 0; i < N_ENDPOINTS; i++) {
      const ip = `10.94.${10 + Math.floor(i / 250)}.${(i % 250) + 2}`;
      many.push({ network: net.id, ip, mac: macFromIp(ip), nodeIp: i % 2 ? '192.168.214.50' : '192.168.214.51' });
    }
    const allMembers = [...members, '192.168.214.50', '192.168.214.51'];
    const count = many.length - remote.length;
    const ov = n1.overlay(new FakeVxlanGuard());
    const naiveNet: OverlayNetwork = { ...net, id: 'naive01', vni: 4201 };
    const sb = sandboxName(n1.config.prefix, naiveNet.id);
    const dev = `vx-${naiveNet.vni}`;
    // Warm-up, discarded: one program from empty and one converged reconcile (the first runs of the reconcile
    // path are its JIT and the kernel's first look-ups; last session's converged figures fell 26 → 16 ms
    // over three rounds for that reason).
    await ov.reconcile({ networks: [net], remote, members: allMembers });
    await ov.reconcile({ networks: [net], remote: many, members: allMembers });
    await ov.reconcile({ networks: [net], remote: many, members: allMembers });
    const noop: Cost[] = [];
    const wall = { ours: [] as number[], naive: [] as number[], noop: [] as number[] };
    let processes = 0;
    let noopOps = 0;
    const prog = await interleave(ROUNDS, [
      {
        // Ours: the full reconcile (read back, diff, 1 ip batch + 1 bridge batch, read back + verify), from
        // empty, PROGRAM_RUNS times (the round's figure is their median); then NOOP_RUNS converged reconciles
        // in one window.
        name: 'ours',
        run: async () => {
          const each: Cost[] = [];
          for (let i = 0; i < PROGRAM_RUNS; i++) {
            await ov.reconcile({ networks: [net], remote, members: allMembers }); // untimed: back to no remote entries
            each.push(await cost(async () => {
              processes = (await ov.reconcile({ networks: [net], remote: many, members: allMembers })).processes;
            }));
          }
          noop.push(await cost(async () => {
            for (let i = 0; i < NOOP_RUNS; i++) noopOps = (await ov.reconcile({ networks: [net], remote: many, members: allMembers })).ops;
          }, NOOP_RUNS));
          wall.ours.push(median(each.map((c) => c.wallMs))!);
          return median(each.map((c) => c.cpuMs))!;
        },
      },
      {
        // Naive: one process per entry, into a fresh second sandbox of the same shape.
        name: 'naive',
        run: async () => {
          await ov.reconcile({ networks: [net], remote, members: allMembers }); // untimed: drops the naive sandbox
          await ov.reconcile({ networks: [net, naiveNet], remote, members: allMembers });
          const c = await cost(async () => {
            for (const e of many.slice(remote.length)) {
              await realExec.check('bridge', ['-n', sb, 'fdb', 'replace', e.mac, 'dev', dev, 'dst', e.nodeIp, 'self', 'permanent']);
              await realExec.check('ip', ['-n', sb, 'neigh', 'replace', e.ip, 'lladdr', e.mac, 'dev', dev, 'nud', 'permanent']);
            }
          });
          wall.naive.push(c.wallMs);
          return c.cpuMs;
        },
      },
    ], { onRound: (r, g) => console.log(`  program ${count} endpoints round ${r + 1}: CPU ours ${g.ours} ms, naive ${g.naive} ms (wall ${wall.ours[r]} / ${wall.naive[r]} ms); converged reconcile ${noop[r]!.cpuMs} ms CPU, ${noop[r]!.wallMs} ms wall`) });
    wall.noop = noop.map((c) => c.wallMs);
    rows.push(pairedRow(`program ${count} remote endpoints (FDB + neighbour): CPU`, 'ms', prog.ours!, prog.naive!,
      'one bridge/ip process per entry', 'lower', { kind: 'time', floor: CHILD_TICK_MS, samplesPerRound: PROGRAM_RUNS, note: `CPU = agent thread + every child process (ip/bridge); ours = full reconcile from empty incl. read-back and verify, ${processes} batch processes, each round the median of ${PROGRAM_RUNS}; naive = ${2 * count} processes` }));
    rows.push(pairedRow(`reconcile when converged (${count} endpoints): CPU`, 'ms', noop.map((c) => c.cpuMs), null, 'n/a', 'lower', { kind: 'time', floor: r2(CHILD_TICK_MS / NOOP_RUNS), samplesPerRound: NOOP_RUNS, note: `CPU = agent thread + its read-back processes; ops applied: ${noopOps}; each round ${NOOP_RUNS} reconciles in one window` }));
    extra.wallMs = { ...wall, note: 'wall time of the same runs, for reference only (not checked: it moves with the machine\'s load)' };
    extra.endpoints = count;
    extra.seconds = SECONDS;
    extra.rounds = ROUNDS;
    extra.cpuFloorMs = { program: CHILD_TICK_MS, converged: r2(CHILD_TICK_MS / NOOP_RUNS), why: 'children CPU is shown in 10 ms clock ticks; a window is known to ± one tick' };
  } finally {
    await lab.teardown();
  }
  writeResults('overlay', rows, extra, { start: START });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
