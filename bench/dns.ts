/**
 * DNS benchmark (issue 6): dnsperf against our embedded DNS server (own process, so the load generator
 * never shares its event loop) vs dnsmasq vs Docker's embedded DNS, same machine, same run, same record
 * set (1 name and 1,000 names).
 *
 * - ours and dnsmasq read the same hosts(5) file (ours: each name becomes a vip service; dnsmasq:
 *   --addn-hosts) and are queried on 127.0.0.1 of the root namespace.
 * - Docker: a busybox container (image from `docker import`, never pulled) on a user-defined network with
 *   the same names as network aliases; dnsperf runs in its namespace (nsenter -n) against 127.0.0.11,
 *   which Docker DNATs to dockerd's resolver. Skipped (peer null) when dockerd cannot run here.
 *
 * Fairness on a small shared machine (2 CPUs, other people's labs running):
 * - CPUs: dnsperf is pinned to CPU 0 (--client-cpu) and each server to CPU 1 (--server-cpu) with taskset, so a
 *   server never competes with its own load generator. dockerd is NOT pinned (other people's containers
 *   use it); only dnsperf is, when it queries Docker.
 * - Rounds (bench/lib/rounds.ts): --rounds interleaved rounds (every target once per round, the starting target
 *   rotating), so a burst of outside load hits every target alike. Each row's ours/peer are the medians over
 *   the rounds and its ratio the MEDIAN of the per-round ratios, with min–max; a result whose ratios spread
 *   more than 1.5× is written to dns.rejected.json instead of dns.json (exit 1). Latency rows are judged
 *   beyond their ±LATENCY_FLOOR_MS, and a latency at or below it is 'unresolved' (no ratio claimed, not a
 *   rejection). Loss rows are not ratios (0 vs 0) and are not checked. At the fixed rate the checked rows are
 *   CPU per query and p50; p99 and the mean are `informative` (FIXED_TAIL_INFORMATIVE says why).
 * - The load-independent headline: server CPU time per answered query at saturation (utime + stime from
 *   /proc/PID/stat of every serving process, over each saturating run; median over the rounds). qps and
 *   latency depend on what else the machine runs; CPU per query far less. `uptime` is recorded at start
 *   and end (and per round in sets[n].load).
 * - Throughput: dnsperf default (100 outstanding), --secs per run. Latency: fixed-rate runs (-Q --rate)
 *   with per-query output (-v) for p50/p99: --fixed-slices (10) runs of --slice-secs (0.4) per round for every
 *   target, interleaved slice by slice across the targets, the round's figures over the pooled queries (see
 *   FIXED_SLICES). Every target gets a discarded 1 s saturating warm-up run before round 1.
 * - `meshd` is our server as the agent runs it on this machine (--workers W, W = defaultDnsWorkers(CPUs)),
 *   pinned like the others. `meshd-Wproc-unpinned` and `meshd-Nproc-unpinned` (N = max(2, W): the layout
 *   the agent had before on 2 CPUs) compare process counts as a real node runs them (nothing pinned), and
 *   `node-floor` (a Node UDP echo with our send path and no DNS work at all: what Node's receive/send
 *   costs before any DNS logic) are measured alongside in sets[n], not as peer rows — they bound what a
 *   Node server can reach here.
 *
 *   node dist/bench/dns.js [--secs 3] [--rate 5000] [--rounds 3] [--fixed-slices 10] [--slice-secs 0.4] [--no-docker] [--workers W]
 *                          [--client-cpu 0] [--server-cpu 1] [--baseline OTHER_BUILD/dist]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../src/adapters/exec.js';
import { defaultDnsWorkers } from '../src/core/dns/snapshot.js';
import { median as medianOrNull, roundOrder } from './lib/rounds.js';
import { pairedRow, readCommitted, row, snapshot, writeResults, type BenchRow } from './lib/results.js';
import { cpuTicks, freePort, waitLine, writeDnsFixture } from './lib/proc.js';

const START = snapshot();

const args = process.argv.slice(2);
const opt = (k: string, d: number): number => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const SECS = opt('secs', 3);
const RATE = opt('rate', 5000);
/** Interleaved rounds per target; the median is kept. */
const ROUNDS = opt('rounds', 3);
/**
 * Fixed-rate latency: each round, every target gets FIXED_SLICES runs of SLICE_SECS, the targets interleaved
 * slice by slice (the first target rotating every slice), and the round's p50/p99/avg are over the POOLED
 * queries of its slices (RATE × SLICE_SECS × FIXED_SLICES per target: 20,000 at the defaults, p99 = its 200
 * slowest). Why: at 5,000 qps the tail is set by wake-ups, not by the server (a query costs the server ~3 µs
 * at saturation) — whether some other task holds the server's or dnsperf's CPU when a query lands. The old
 * method ran each target's three 1.5 s runs in one block and took the median of their p99s: a block of 4.5 s
 * met the machine of those 4.5 s, and a quiet machine's single runs went 0.14–0.83 ms at random (dnsmasq
 * 0.38, 0.76, 0.83 in one round, 0.16, 0.17, 0.14 in another), so one round's ratio was 0.42 and another's
 * 2.9. Interleaved 0.4 s slices spread each second of outside load over every target alike, and pooling
 * them makes p99 a count over 20,000 queries (one 20 ms stall delays ~100 of them: half a p99's margin)
 * instead of the worst moment of one short run.
 */
const FIXED_SLICES = opt('fixed-slices', 10);
const SLICE_SECS = opt('slice-secs', 0.4);
/** Discarded saturating run per target before round 1 (JIT warm-up of a fresh server). */
const WARMUP_SECS = 1;
/**
 * ± resolution of a latency figure, in ms (rounds.ts 'time' rows): on this 2-core VM one wake-up of the
 * client or the server costs up to about this much, so a latency at or below it is the machine's, not the
 * server's (such a row is 'unresolved': shown, no ratio claimed). An estimate, stated so it can be argued.
 * Last session's p99 rows at 5,000 qps were 0.04–0.72 ms.
 */
const LATENCY_FLOOR_MS = 0.1;
/**
 * Why the fixed-rate p99 and mean are `informative` rows (shown, never checked). At RATE qps a query costs the server
 * a few µs of CPU and the server idles between queries, so the slow queries are the ones that landed while another
 * task held the server's or dnsperf's CPU: on 2 shared cores that is scheduling, not the server. Pooling 20,000
 * queries from interleaved slices did not settle it: the last quiet run (load 1.3–1.7) refused the p99 at 1 name
 * with per-round ratios 0.60–2.59×. The mean carries the same tail (one 20 ms stall that delays ~100 of 20,000
 * queries adds ~0.1 ms to a ~0.1 ms mean). The checked figures at this rate are the server's CPU per query and the
 * p50 (the typical query, which no single stall moves).
 */
const FIXED_TAIL_INFORMATIVE = {
  p99: `p99 at a fixed rate is set by wake-ups (whether another task held the server's or dnsperf's CPU when a query landed), not by a server that spends a few µs per query: on 2 shared cores it measures scheduling (the last quiet run's p99 ratio went 0.60–2.59× over three rounds); the checked figures at this rate are CPU per query and p50`,
  avg: 'the mean at a fixed rate carries the p99\'s tail (one 20 ms stall delaying ~100 of 20,000 queries adds ~0.1 ms to a ~0.1 ms mean), so it moves with scheduling like the p99; the checked figures at this rate are CPU per query and p50',
} as const;
const NCPU = cpus().length;
const WORKERS = opt('workers', defaultDnsWorkers(NCPU));
/** taskset CPU lists (empty: no pinning, e.g. on one CPU). */
const CLIENT_CPU = NCPU > 1 ? String(opt('client-cpu', 0)) : '';
const SERVER_CPU = NCPU > 1 ? String(opt('server-cpu', 1)) : '';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Another build's dist/ (e.g. of the previous commit) measured alongside as `meshd-baseline` (same workers, pinned). */
const BASELINE = args.includes('--baseline') ? args[args.indexOf('--baseline') + 1] : undefined;

interface Target {
  name: string;
  host: string;
  port: number;
  /** Process whose CPU time is the server's. */
  pid: number;
  /** More processes of the same server (our DNS workers). */
  morePids?: number[];
  /** Run dnsperf inside this process's network namespace. */
  netnsPid?: number;
  /** A reference measured alongside (sets[n]), in no row (measured like the others: its slices interleave with theirs). */
  ref?: boolean;
}

interface PerfResult {
  qps: number;
  avgMs: number;
  lossPct: number;
  completed: number;
  latencies?: number[];
  /** Server CPU time over the run, µs per completed query. */
  cpuUs: number;
}


/** argv prefix pinning a command to `cpu` (nothing when unpinned). */
const pin = (cpu: string): string[] => (cpu ? ['taskset', '-c', cpu] : []);


const serverTicks = (t: Target): number => [t.pid, ...(t.morePids ?? [])].reduce((a, p) => a + cpuTicks(p), 0);

/** One dnsperf run (pinned to CLIENT_CPU), with the server's CPU time over it. */
async function dnsperf(t: Target, file: string, secs: number, extra: string[] = []): Promise<PerfResult> {
  const argv = [...pin(CLIENT_CPU), 'dnsperf', '-s', t.host, '-p', String(t.port), '-d', file, '-l', String(secs), ...extra];
  const cmd = t.netnsPid ? ['nsenter', '-t', String(t.netnsPid), '-n', ...argv] : argv;
  const before = serverTicks(t);
  const r = await realExec.run(cmd[0]!, cmd.slice(1), { timeoutMs: (secs + 30) * 1000 });
  const ticks = serverTicks(t) - before;
  const out = r.stdout;
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const completed = num(/Queries completed:\s+(\d+)/);
  const res: PerfResult = { qps: num(/Queries per second:\s+([\d.]+)/), avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000, lossPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/), completed, cpuUs: (ticks * 10_000) / Math.max(1, completed) };
  if (extra.includes('-v')) res.latencies = [...out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  if (!Number.isFinite(res.qps)) throw new Error(`dnsperf failed against ${t.name}: ${r.stderr.slice(0, 400)} ${out.slice(-400)}`);
  return res;
}

const pct = (a: number[], p: number): number => a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))] ?? NaN;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const medianOf = (xs: number[]): number => r2(medianOrNull(xs) ?? Number.NaN);
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').trim();


/** Spawns `argv` pinned to `cpu` (taskset execs: the pid is the program's). */
function spawnPinned(cpu: string, argv: string[], stdout: 'pipe' | 'ignore'): ChildProcess {
  const full = [...pin(cpu), ...argv];
  return spawn(full[0]!, full.slice(1), { stdio: ['ignore', stdout, 'inherit'] });
}

async function startOurs(hosts: string, workers: number, name: string, cpu: string, dist = join(root, 'dist')): Promise<{ target: Target; child: ChildProcess }> {
  const child = spawnPinned(cpu, [process.execPath, join(dist, 'src/adapters/dns-server/standalone.js'), '--hosts', hosts, '--port', '0', '--workers', String(workers)], 'pipe');
  const line = await waitLine(child, /listening (\S+) (\d+) names \d+ pids ([\d,]+)/, 30_000);
  const f = line.split(' ');
  const pids = f[6]!.split(',').map(Number);
  return { target: { name, host: '127.0.0.1', port: Number(f[2]), pid: pids[0]!, morePids: pids.slice(1) }, child };
}

/**
 * The floor of a Node UDP server here: answers every datagram with itself (QR bit set, so dnsperf counts a
 * response) through dgram's send, as our server does, with no DNS work at all.
 */
async function startNodeFloor(cpu: string): Promise<{ target: Target; child: ChildProcess }> {
  const udp = join(root, 'dist/src/adapters/dns-server/udp.js');
  const src = `import { createDnsUdpSocket } from ${JSON.stringify(udp)};
const s = createDnsUdpSocket('udp4', 4 << 20);
s.bind(0, '127.0.0.1', () => {
  const send = (b, p, a) => s.send(b, p, a);
  s.on('message', (m, ri) => { m[2] |= 0x80; send(m, ri.port, ri.address); });
  process.stdout.write('listening 127.0.0.1 ' + s.address().port + ' pid ' + process.pid + '\\n');
});`;
  const child = spawnPinned(cpu, [process.execPath, '--input-type=module', '-e', src], 'pipe');
  const line = await waitLine(child, /listening \S+ (\d+) pid (\d+)/, 30_000);
  const f = line.split(' ');
  return { target: { name: 'node-floor', host: '127.0.0.1', port: Number(f[2]), pid: Number(f[4]) }, child };
}

async function startDnsmasq(hosts: string, cpu: string): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort();
  const child = spawnPinned(cpu, ['dnsmasq', '-k', '-C', '/dev/null', '-u', 'root', '-p', String(port), '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--local-ttl=5', '--cache-size=10000', '--pid-file='], 'ignore');
  // ready when it answers
  for (let i = 0; i < 50; i++) {
    const r = await realExec.run('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=1', '+tries=1', 'svc0']);
    if (r.stdout.trim().length > 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return { target: { name: 'dnsmasq', host: '127.0.0.1', port, pid: child.pid! }, child };
}

interface DockerPeer {
  target: Target;
  version: string;
  cleanup(): Promise<void>;
}

async function startDocker(names: string[], tag: string): Promise<DockerPeer> {
  const { ensureDockerd, buildBusyboxImage } = await import('../test/helpers/docker.js');
  if (!(await ensureDockerd(90_000))) throw new Error('docker is not installed');
  const image = buildBusyboxImage();
  const net = `h2dns-bench-${tag}`;
  const ctr = `h2dns-bench-${tag}-c`;
  const cleanup = async (): Promise<void> => {
    await realExec.run('docker', ['rm', '-f', ctr]);
    await realExec.run('docker', ['network', 'rm', net]);
  };
  await cleanup();
  try {
    await realExec.check('docker', ['network', 'create', net]);
    await realExec.check('docker', ['run', '-d', '--name', ctr, '--network', net, ...names.flatMap((n) => ['--network-alias', n]), image, 'sleep', '3600'], { timeoutMs: 60_000 });
    const pid = Number((await realExec.check('docker', ['inspect', '-f', '{{.State.Pid}}', ctr])).trim());
    const dockerd = Number((await realExec.check('pidof', ['dockerd'])).trim().split(/\s+/)[0]);
    const version = (await realExec.check('docker', ['version', '--format', '{{.Server.Version}}'])).trim();
    return { target: { name: 'docker', host: '127.0.0.11', port: 53, pid: dockerd, netnsPid: pid }, version, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** One target's figures in one round: a saturating run and a fixed-rate run. */
interface RoundFigures {
  qps: number;
  avgMs: number;
  lossPct: number;
  /** Server CPU µs per query at saturation. */
  cpuUsSat: number;
  p50Ms: number;
  p99Ms: number;
  fixedAvgMs: number;
  /** Server CPU µs per query at the fixed rate. */
  cpuUsFixed: number;
}

type Key = keyof RoundFigures;
const KEYS: Key[] = ['qps', 'avgMs', 'lossPct', 'cpuUsSat', 'p50Ms', 'p99Ms', 'fixedAvgMs', 'cpuUsFixed'];

/** Medians over the rounds, and every round's figures (the spread shows how noisy the machine was). */
type Figures = Record<Key, number> & { rounds: RoundFigures[] };

/**
 * Interleaved rounds: each round runs every target's saturating run (starting target rotating), then
 * FIXED_SLICES fixed-rate slices of every target, interleaved slice by slice (starting target rotating every
 * slice); a target's fixed-rate figures are over the pooled queries of its slices (see FIXED_SLICES).
 * Before round 1 every target gets a WARM-UP saturating run of WARMUP_SECS, discarded (a fresh Node server's
 * first queries run through its JIT).
 */
async function measure(targets: Target[], qfile: string, loads: string[]): Promise<Map<string, Figures>> {
  for (const t of targets) await dnsperf(t, qfile, WARMUP_SECS);
  loads.push(loadavg());
  const rounds = new Map<string, RoundFigures[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const sat = new Map<string, PerfResult>();
    for (const i of roundOrder(targets.length, round)) sat.set(targets[i]!.name, await dnsperf(targets[i]!, qfile, SECS));
    const slices = new Map<string, PerfResult[]>(targets.map((t) => [t.name, []]));
    for (let k = 0; k < FIXED_SLICES; k++) {
      for (const i of roundOrder(targets.length, round * FIXED_SLICES + k)) {
        const t = targets[i]!;
        slices.get(t.name)!.push(await dnsperf(t, qfile, SLICE_SECS, ['-Q', String(RATE), '-v']));
      }
    }
    for (const t of targets) {
      const r = sat.get(t.name)!;
      const fixed = slices.get(t.name)!;
      const lat = fixed.flatMap((f) => f.latencies ?? []).sort((x, y) => x - y);
      const completed = fixed.reduce((a, f) => a + f.completed, 0);
      const fig: RoundFigures = {
        qps: Math.round(r.qps), avgMs: r2(r.avgMs), lossPct: r.lossPct, cpuUsSat: r2(r.cpuUs),
        p50Ms: r2(pct(lat, 50)), p99Ms: r2(pct(lat, 99)), fixedAvgMs: r2(lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length)),
        cpuUsFixed: r2(fixed.reduce((a, f) => a + f.cpuUs * f.completed, 0) / Math.max(1, completed)),
      };
      const each = fixed.map((f) => pct(f.latencies ?? [], 99));
      console.log(`  ${t.name.padEnd(20)} round ${round + 1}: ${fig.qps} qps, avg ${fig.avgMs} ms, loss ${fig.lossPct}%, cpu ${fig.cpuUsSat} µs/q | at ${RATE} qps: p50 ${fig.p50Ms} ms, p99 ${fig.p99Ms} ms over ${lat.length} queries (slices' p99 ${r2(Math.min(...each))}–${r2(Math.max(...each))}), cpu ${fig.cpuUsFixed} µs/q`);
      rounds.get(t.name)!.push(fig);
    }
    loads.push(loadavg());
  }
  const out = new Map<string, Figures>();
  for (const t of targets) {
    const rs = rounds.get(t.name)!;
    out.set(t.name, { ...(Object.fromEntries(KEYS.map((k) => [k, medianOf(rs.map((x) => x[k]))])) as Record<Key, number>), rounds: rs });
  }
  return out;
}

async function main(): Promise<void> {
  for (const tool of ['dnsperf', 'dnsmasq', 'taskset']) {
    if ((await realExec.run('which', [tool])).code !== 0) throw new Error(`${tool} missing: apt-get install -y dnsperf dnsmasq util-linux`);
  }
  const uptimeAtStart = (await realExec.run('uptime', [])).stdout.trim();
  const dir = mkdtempSync(join(tmpdir(), 'h2dns-bench-'));
  const rows: BenchRow[] = [];
  const multi = Math.max(2, WORKERS);
  const extra: Record<string, unknown> = { baseline: BASELINE ?? null, secsPerRun: SECS, rounds: ROUNDS, fixedRateQps: RATE, fixedSlices: FIXED_SLICES, sliceSecs: SLICE_SECS, warmUpSecs: WARMUP_SECS, meshdWorkers: WORKERS, pinning: { dnsperf: CLIENT_CPU || null, servers: SERVER_CPU || null, dockerd: null, unpinned: [`meshd-${WORKERS}proc-unpinned`, `meshd-${multi}proc-unpinned`] }, sets: {} };
  const dnsmasqVersion = (await realExec.run('dnsmasq', ['-v'])).stdout.split('\n')[0]!.replace(/\s+Copyright.*/, '');
  let dockerNote: string | undefined = args.includes('--no-docker') ? 'skipped (--no-docker)' : undefined;
  let dockerVersion = '';
  try {
    for (const size of [1, 1000]) {
      const { hosts, qfile, names } = writeDnsFixture(dir, size);
      console.log(`\n# ${size} name(s)`);
      const started: ChildProcess[] = [];
      let docker: DockerPeer | undefined;
      try {
        const ours = await startOurs(hosts, WORKERS, 'meshd', SERVER_CPU);
        started.push(ours.child);
        // The multi-process layout the agent had before on 2 CPUs, unpinned (it shares CPU 0 with dnsperf), next
        // to the default layout unpinned too: like for like, as a real node runs it.
        const unpinned = await startOurs(hosts, WORKERS, `meshd-${WORKERS}proc-unpinned`, '');
        started.push(unpinned.child);
        const many = WORKERS === multi ? undefined : await startOurs(hosts, multi, `meshd-${multi}proc-unpinned`, '');
        if (many) started.push(many.child);
        const base = BASELINE ? await startOurs(hosts, WORKERS, 'meshd-baseline', SERVER_CPU, BASELINE) : undefined;
        if (base) started.push(base.child);
        const floor = await startNodeFloor(SERVER_CPU);
        started.push(floor.child);
        const dm = await startDnsmasq(hosts, SERVER_CPU);
        started.push(dm.child);
        if (!dockerNote) {
          try {
            docker = await startDocker(names, String(size));
            dockerVersion = docker.version;
          } catch (e) {
            dockerNote = `docker peer unavailable: ${(e as Error).message.slice(0, 200)}`;
          }
        }
        const refs = [...(many ? [many.target] : []), ...(base ? [base.target] : []), floor.target].map((t) => ({ ...t, ref: true }));
        const targets = [ours.target, dm.target, ...(docker ? [docker.target] : []), unpinned.target, ...refs];
        const loads: string[] = [];
        const f = await measure(targets, qfile, loads);
        (extra.sets as Record<string, unknown>)[String(size)] = { ...Object.fromEntries(f), load: loads };
        // Like for like: dnsmasq is pinned like `meshd`; dockerd cannot be pinned (shared), so Docker is compared
        // with our default layout unpinned too. On a loaded machine a pinned server only gets what is left of its
        // CPU, so its qps there follows its CPU cost per query.
        const pinned = f.get('meshd')!;
        const free = f.get(`meshd-${WORKERS}proc-unpinned`)!;
        const peers: [string, Figures, Figures | undefined, string | undefined][] = [
          [dnsmasqVersion, pinned, f.get('dnsmasq'), SERVER_CPU ? `both servers pinned to CPU ${SERVER_CPU}, dnsperf to CPU ${CLIENT_CPU}` : undefined],
          [`docker embedded DNS ${dockerVersion}`.trim(), free, f.get('docker'), dockerNote ?? `both servers unpinned (dockerd is shared: not pinned; ours: meshd-${WORKERS}proc-unpinned), dnsperf on CPU ${CLIENT_CPU || 'any'}; Docker queried from the container namespace at 127.0.0.11 (iptables DNAT), ours on 127.0.0.1; Docker CPU = whole dockerd`],
        ];
        for (const [peerName, o, p, note] of peers) {
          const n = p ? note : note ?? 'peer did not run';
          // CPU per query and qps are over thousands of queries per round: 'rate' rows. Latencies are 'time' rows
          // with LATENCY_FLOOR_MS; each round's figure rests on every query of its run (samplesPerRound).
          const pr = (metric: string, unit: string, k: Key, better: 'higher' | 'lower', lat?: number, informative?: string): BenchRow =>
            pairedRow(metric, unit, o.rounds.map((x) => x[k]), p ? p.rounds.map((x) => x[k]) : null, peerName, better,
              { ...(n ? { note: n } : {}), ...(lat === undefined ? { kind: 'rate' as const } : { floor: LATENCY_FLOOR_MS, samplesPerRound: lat }), ...(informative ? { informative } : {}) });
          const satQueries = Math.round((medianOrNull(o.rounds.map((x) => x.qps)) ?? 0) * SECS);
          rows.push(pr(`server CPU per query at saturation, ${size} name(s)`, 'µs', 'cpuUsSat', 'lower'));
          rows.push(pr(`qps, ${size} name(s)`, 'queries/s', 'qps', 'higher'));
          rows.push(pr(`avg latency at saturation, ${size} name(s)`, 'ms', 'avgMs', 'lower', satQueries));
          // At the fixed rate the checked figures are the server's CPU per query (below) and the p50; the p99 and the
          // mean are shown with their reason (FIXED_TAIL_INFORMATIVE), never checked.
          const fixedQueries = Math.round(RATE * SLICE_SECS * FIXED_SLICES);
          rows.push(pr(`p50 latency at ${RATE} qps, ${size} name(s)`, 'ms', 'p50Ms', 'lower', fixedQueries));
          rows.push(pr(`p99 latency at ${RATE} qps, ${size} name(s)`, 'ms', 'p99Ms', 'lower', fixedQueries, FIXED_TAIL_INFORMATIVE.p99));
          rows.push(pr(`avg latency at ${RATE} qps, ${size} name(s)`, 'ms', 'fixedAvgMs', 'lower', fixedQueries, FIXED_TAIL_INFORMATIVE.avg));
          // loss is 0 vs 0 on a working run: no ratio to check, the medians are shown as they are
          rows.push(row(`loss at saturation, ${size} name(s)`, '%', o.lossPct, p?.lossPct ?? null, peerName, 'lower', n));
          rows.push(pr(`server CPU per query at ${RATE} qps, ${size} name(s)`, 'µs', 'cpuUsFixed', 'lower'));
        }
      } finally {
        for (const c of started) c.kill('SIGTERM');
        await docker?.cleanup();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ratio = (metric: string, peer: string): number | null => rows.find((r) => r.metric === metric && r.peerName.toLowerCase().includes(peer))?.ratio ?? null;
  /**
   * What bounds qps against dnsmasq when both are CPU-bound (each gets a CPU, or the same share of a loaded one):
   * qps ≈ CPU share / CPU per query. `nodeFloorQpsBound` = dnsmasq's CPU/query over the Node echo floor's —
   * the best qps ratio any Node server doing this receive/send could reach, before any DNS work.
   */
  const bound = (n: number): Record<string, number | null> => {
    const s = (extra.sets as Record<string, Record<string, Figures | undefined>>)[String(n)];
    const dm = s?.dnsmasq?.cpuUsSat;
    const fl = s?.['node-floor']?.cpuUsSat;
    const us = s?.meshd?.cpuUsSat;
    return { nodeFloorCpuUs: fl ?? null, dnsmasqCpuUs: dm ?? null, oursCpuUs: us ?? null, nodeFloorQpsBound: dm && fl ? r2(dm / fl) : null, oursCpuBoundQpsRatio: dm && us ? r2(dm / us) : null };
  };
  const goals = [1, 1000].map((n) => ({
    names: n,
    qpsVsDnsmasq: ratio(`qps, ${n} name(s)`, 'dnsmasq'),
    cpuPerQueryVsDnsmasq: ratio(`server CPU per query at saturation, ${n} name(s)`, 'dnsmasq'),
    qpsVsDocker: ratio(`qps, ${n} name(s)`, 'docker'),
    p99VsDocker: ratio(`p99 latency at ${RATE} qps, ${n} name(s)`, 'docker'),
    cpuPerQueryVsDocker: ratio(`server CPU per query at saturation, ${n} name(s)`, 'docker'),
    ...bound(n),
  })).map((g) => ({ ...g, dnsmasqGoalMet: g.qpsVsDnsmasq != null && g.qpsVsDnsmasq >= 0.8, dockerGoalMet: g.qpsVsDocker != null && g.qpsVsDocker >= 1.2 && (g.p99VsDocker ?? 0) >= 1 }));
  // The machine is shared and noisy: keep the previous run's figures next to this one's (one level deep).
  const prev = readCommitted('dns');
  const previousRun = prev ? { date: prev.date, meshdWorkers: prev.meshdWorkers, load: prev.load ?? null, uptimeAtStart: prev.uptimeAtStart, verdict: prev.verdict ?? null, goalStatus: prev.goalStatus, sets: prev.sets } : null;
  const uptimeAtEnd = (await realExec.run('uptime', [])).stdout.trim();
  writeResults('dns', rows, {
    ...extra,
    headline: 'server CPU per query at saturation (load-independent; qps and latency move with the outside load — see uptime and sets[n].load)',
    uptimeAtStart,
    uptimeAtEnd,
    dockerNote: dockerNote ?? null,
    goals: 'qps ≥ 0.8× dnsmasq; ≥ 1.2× Docker with p99 no worse',
    goalStatus: goals,
    previousRun,
  }, { start: START });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
