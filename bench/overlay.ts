/**
 * Overlay benchmark (`npm run bench -- overlay` → bench/results/overlay.json):
 *  1. Throughput, iperf3 task-to-task across the overlay vs the same two hosts over the
 *     underlay directly (1 and 4 streams); ratio = overlay / underlay.
 *  2. Time to program BENCH_ENDPOINTS (default 500) remote endpoints (FDB + neighbour) into an empty
 *     sandbox through our reconcile path (read back → diff → one ip batch + one bridge batch → verify)
 *     vs the naive path of one `bridge fdb` + one `ip neigh` process per entry.
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
import { interleave, median } from './lib/rounds.js';
import { pairedRow, snapshot, writeResults, type BenchRow } from './lib/results.js';
import { attachment, endpoint, makeNode } from '../test/integration/overlay/helpers.js';
import { eventually, labUp } from '../test/integration/overlay/lab.js';

const PREFIX = 'mtov-bn-';
const START = snapshot();
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const N_ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/**
 * ± resolution of one timed programming run, in ms (rounds.ts 'time' rows): every run spawns processes
 * (`ip`/`bridge` batches and read-backs), and a spawn's start on this shared 2-core machine varies by about
 * this much — an estimate, not a measurement, stated so the check's allowance is visible.
 */
const FLOOR_MS = 2;
/** Converged reconciles timed per round (they take ~20 ms, within 10× the floor): the round's figure is their median. */
const NOOP_SAMPLES = 5;
const ms = (t: bigint): number => Math.round(Number(process.hrtime.bigint() - t) / 1e5) / 10;

async function iperf(ns: string, server: string, streams: number): Promise<number> {
  const out = await realExec.check('iperf3', ['-c', server, '-t', String(SECONDS), '-P', String(streams), '-J'], { netns: ns, timeoutMs: (SECONDS + 20) * 1000 });
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return Math.round(j.end.sum_received.bits_per_second / 1e6);
}

/** iperf3 server in `serverNs` bound to `ip`, client in `clientNs`; Mbit/s received. */
async function throughput(serverNs: string, clientNs: string, ip: string, streams: number): Promise<number> {
  const srv: ChildProcess = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-B', ip], { stdio: 'ignore' });
  try {
    const up = await eventually(async () => (await realExec.run('ss', ['-ltnH', 'sport = :5201'], { netns: serverNs })).stdout.includes('5201'), 5000, 50);
    if (!up) throw new Error(`iperf3 server in ${serverNs} did not come up`);
    return await iperf(clientNs, ip, streams);
  } finally {
    srv.kill('SIGKILL');
    await eventually(async () => srv.exitCode !== null || srv.signalCode !== null, 2000, 20);
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

    // 1. Throughput: underlay and overlay interleaved, first side alternating (the 2 CPUs are shared).
    const samples: Record<string, number[]> = {};
    for (const streams of [1, 4]) {
      const got = await interleave(ROUNDS, [
        { name: 'underlay', run: () => throughput(n2.host.ns, n1.host.ns, n2.host.ip, streams) },
        { name: 'overlay', run: () => throughput(t2, t1, '10.94.0.12', streams) },
      ], { onRound: (r, g) => console.log(`  iperf3 P${streams} round ${r + 1}: underlay ${g.underlay} overlay ${g.overlay} Mbit/s`) });
      samples[`underlay_P${streams}`] = got.underlay!;
      samples[`overlay_P${streams}`] = got.overlay!;
      rows.push(pairedRow(`iperf3 TCP, ${streams} stream(s), overlay vs underlay`, 'Mbit/s', got.overlay!, got.underlay!, 'underlay direct (same hosts)', 'higher',
        { note: 'veth/bridge namespaces on one shared 2-CPU machine: both paths are CPU-bound' }));
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
    const noop: number[] = [];
    let processes = 0;
    let noopOps = 0;
    const prog = await interleave(ROUNDS, [
      {
        // Ours: the full reconcile (read back, diff, 1 ip batch + 1 bridge batch, read back + verify), from empty.
        name: 'ours',
        run: async () => {
          await ov.reconcile({ networks: [net], remote, members: allMembers }); // untimed: back to no remote entries
          const t = process.hrtime.bigint();
          const rep = await ov.reconcile({ networks: [net], remote: many, members: allMembers });
          const took = ms(t);
          processes = rep.processes;
          const each: number[] = [];
          for (let i = 0; i < NOOP_SAMPLES; i++) {
            const t2 = process.hrtime.bigint();
            noopOps = (await ov.reconcile({ networks: [net], remote: many, members: allMembers })).ops;
            each.push(ms(t2));
          }
          noop.push(median(each)!);
          return took;
        },
      },
      {
        // Naive: one process per entry, into a fresh second sandbox of the same shape.
        name: 'naive',
        run: async () => {
          await ov.reconcile({ networks: [net], remote, members: allMembers }); // untimed: drops the naive sandbox
          await ov.reconcile({ networks: [net, naiveNet], remote, members: allMembers });
          const t = process.hrtime.bigint();
          for (const e of many.slice(remote.length)) {
            await realExec.check('bridge', ['-n', sb, 'fdb', 'replace', e.mac, 'dev', dev, 'dst', e.nodeIp, 'self', 'permanent']);
            await realExec.check('ip', ['-n', sb, 'neigh', 'replace', e.ip, 'lladdr', e.mac, 'dev', dev, 'nud', 'permanent']);
          }
          return ms(t);
        },
      },
    ], { onRound: (r, g) => console.log(`  program ${count} endpoints round ${r + 1}: ours ${g.ours} ms, naive ${g.naive} ms`) });
    rows.push(pairedRow(`program ${count} remote endpoints (FDB + neighbour)`, 'ms', prog.ours!, prog.naive!,
      'one bridge/ip process per entry', 'lower', { floor: FLOOR_MS, note: `ours = full reconcile from empty incl. read-back and verify, ${processes} batch processes; naive = ${2 * count} processes` }));
    rows.push(pairedRow(`reconcile when converged (${count} endpoints)`, 'ms', noop, null, 'n/a', 'lower', { floor: FLOOR_MS, samplesPerRound: NOOP_SAMPLES, note: `ops applied: ${noopOps}; each round the median of ${NOOP_SAMPLES}` }));
    extra.endpoints = count;
    extra.seconds = SECONDS;
    extra.rounds = ROUNDS;
    extra.floorMs = FLOOR_MS;
  } finally {
    await lab.teardown();
  }
  writeResults('overlay', rows, extra, { start: START });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
