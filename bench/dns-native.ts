/**
 * DNS UDP path benchmark (issue 18 item 5): our standalone server with the native batched UDP path
 * (`--udp native`, native-udp.ts) and with dgram (`--udp js`) against dnsmasq, in the same run, with
 * bench/dns.ts's method: dnsperf pinned to one CPU, every server pinned to the other, server CPU time
 * (utime + stime of its process from /proc) per completed query at saturation, sides interleaved in
 * rounds (bench/lib/rounds.ts), the median of the per-round ratios kept with its min–max. Each server
 * gets one unmeasured 1 s run first (JIT warm-up, cache fill).
 *
 * Rows (bench/results/dns-native.json): per record-set size, CPU per query and qps of ours-native vs
 * dnsmasq, ours-js vs dnsmasq, and ours-native vs ours-js (the native path's own gain). Goal of the
 * issue: ours-native ≥ 0.8× dnsmasq CPU per query. Load average at start and end, and per round.
 *
 *   node dist/bench/dns-native.js [--secs 3] [--rounds 5] [--client-cpu 0] [--server-cpu 1] [--sizes 1,1000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../src/adapters/exec.js';
import { interleave, median } from './lib/rounds.js';
import { pairedRow, snapshot, writeResults, type BenchRow } from './lib/results.js';
import { cpuTicks, freePort, waitLine, writeDnsFixture } from './lib/proc.js';

const START = snapshot();
const args = process.argv.slice(2);
const opt = (k: string, d: string): string => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : d;
};
const SECS = Number(opt('secs', '3'));
const ROUNDS = Number(opt('rounds', '5'));
const SIZES = opt('sizes', '1,1000').split(',').map(Number);
const NCPU = cpus().length;
const CLIENT_CPU = NCPU > 1 ? opt('client-cpu', '0') : '';
const SERVER_CPU = NCPU > 1 ? opt('server-cpu', '1') : '';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Target {
  name: string;
  port: number;
  pid: number;
}

interface Figures {
  qps: number;
  cpuUs: number;
  lossPct: number;
}

const pin = (cpu: string): string[] => (cpu ? ['taskset', '-c', cpu] : []);
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').trim();




async function startOurs(hosts: string, udp: 'native' | 'js'): Promise<{ target: Target; child: ChildProcess }> {
  const argv = [...pin(SERVER_CPU), process.execPath, join(root, 'dist/src/adapters/dns-server/standalone.js'), '--hosts', hosts, '--port', '0', '--workers', '1', '--udp', udp];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await waitLine(child, /listening (\S+) (\d+) names \d+ pids ([\d,]+)/, 30_000);
  const f = line.split(' ');
  return { target: { name: `ours-${udp}`, port: Number(f[2]), pid: Number(f[6]!.split(',')[0]) }, child };
}

async function startDnsmasq(hosts: string): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort();
  const argv = [...pin(SERVER_CPU), 'dnsmasq', '-k', '-C', '/dev/null', '-u', 'root', '-p', String(port), '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--local-ttl=5', '--cache-size=10000', '--pid-file='];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  let last = '';
  for (let i = 0; i < 50; i++) {
    const r = await realExec.run('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=1', '+tries=1', 'svc0']);
    last = r.stdout.trim() || r.stderr.trim();
    if (r.stdout.trim().length > 0) return { target: { name: 'dnsmasq', port, pid: child.pid! }, child };
    await new Promise((res) => setTimeout(res, 100));
  }
  child.kill('SIGTERM');
  throw new Error(`dnsmasq on port ${port} did not answer svc0 within 50 tries; last: ${last}`);
}

/** One saturating dnsperf run (pinned to CLIENT_CPU) with the server's CPU time over it. */
async function dnsperf(t: Target, qfile: string, secs = SECS): Promise<Figures> {
  const argv = [...pin(CLIENT_CPU), 'dnsperf', '-s', '127.0.0.1', '-p', String(t.port), '-d', qfile, '-l', String(secs)];
  const before = cpuTicks(t.pid);
  const r = await realExec.run(argv[0]!, argv.slice(1), { timeoutMs: (secs + 30) * 1000 });
  const ticks = cpuTicks(t.pid) - before;
  const num = (re: RegExp): number => Number(re.exec(r.stdout)?.[1] ?? NaN);
  const completed = num(/Queries completed:\s+(\d+)/);
  const qps = num(/Queries per second:\s+([\d.]+)/);
  if (!Number.isFinite(qps) || !completed) throw new Error(`dnsperf failed against ${t.name}: ${r.stderr.slice(0, 300)} ${r.stdout.slice(-300)}`);
  return { qps: Math.round(qps), cpuUs: Math.round(((ticks * 10_000) / completed) * 100) / 100, lossPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/) };
}

async function main(): Promise<void> {
  for (const tool of ['dnsperf', 'dnsmasq', 'taskset', 'dig']) {
    if ((await realExec.run('which', [tool])).code !== 0) throw new Error(`${tool} missing: apt-get install -y dnsperf dnsmasq util-linux dnsutils`);
  }
  const uptimeAtStart = (await realExec.run('uptime', [])).stdout.trim();
  const dnsmasqVersion = (await realExec.run('dnsmasq', ['-v'])).stdout.split('\n')[0]!.replace(/\s+Copyright.*/, '');
  const dir = mkdtempSync(join(tmpdir(), 'h18d-dnsnative-'));
  const rows: BenchRow[] = [];
  const sets: Record<string, unknown> = {};
  const pinning = SERVER_CPU ? `servers pinned to CPU ${SERVER_CPU}, dnsperf to CPU ${CLIENT_CPU}` : 'unpinned (one CPU)';
  try {
    for (const size of SIZES) {
      const { hosts, qfile } = writeDnsFixture(dir, size);
      console.log(`\n# ${size} name(s)`);
      const started: ChildProcess[] = [];
      try {
        const native = await startOurs(hosts, 'native');
        started.push(native.child);
        const js = await startOurs(hosts, 'js');
        started.push(js.child);
        const dm = await startDnsmasq(hosts);
        started.push(dm.child);
        // One unmeasured run per server first: V8's JIT warm-up and the answer cache's fill are start-up
        // costs, not the steady state (they landed on round 1 alone, for ours only).
        for (const t of [native.target, js.target, dm.target]) await dnsperf(t, qfile, 1);
        const loads: string[] = [loadavg()];
        const got = await interleave<Figures>(ROUNDS, [native.target, js.target, dm.target].map((t) => ({
          name: t.name,
          run: async (round: number) => {
            const f = await dnsperf(t, qfile);
            console.log(`  ${t.name.padEnd(12)} round ${round + 1}: ${f.qps} qps, cpu ${f.cpuUs} µs/q, loss ${f.lossPct}%`);
            return f;
          },
        })), { onRound: () => loads.push(loadavg()) });
        sets[String(size)] = { ...got, load: loads, medians: Object.fromEntries(Object.entries(got).map(([k, v]) => [k, { qps: median(v.map((x) => x.qps)), cpuUs: median(v.map((x) => x.cpuUs)) }])) };
        const pairs: [string, Figures[], Figures[], string][] = [
          ['ours-native', got['ours-native']!, got.dnsmasq!, dnsmasqVersion],
          ['ours-js', got['ours-js']!, got.dnsmasq!, dnsmasqVersion],
          ['ours-native', got['ours-native']!, got['ours-js']!, 'ours-js (dgram path, same build)'],
        ];
        for (const [who, o, p, peer] of pairs) {
          rows.push(pairedRow(`${who}: server CPU per query at saturation, ${size} name(s)`, 'µs', o.map((x) => x.cpuUs), p.map((x) => x.cpuUs), peer, 'lower', { note: pinning }));
          rows.push(pairedRow(`${who}: qps, ${size} name(s)`, 'queries/s', o.map((x) => x.qps), p.map((x) => x.qps), peer, 'higher', { note: pinning }));
        }
      } finally {
        for (const c of started) c.kill('SIGTERM');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const goal = SIZES.map((n) => {
    const r = rows.find((x) => x.metric === `ours-native: server CPU per query at saturation, ${n} name(s)` && x.peerName === dnsmasqVersion);
    return { names: n, cpuPerQueryVsDnsmasq: r?.ratio ?? null, goalMet: r?.ratio != null && r.ratio >= 0.8 };
  });
  const uptimeAtEnd = (await realExec.run('uptime', [])).stdout.trim();
  writeResults('dns-native', rows, {
    secsPerRun: SECS,
    rounds: ROUNDS,
    pinning,
    headline: 'server CPU per query at saturation (utime+stime per completed query), ours-native vs dnsmasq',
    goal: 'ours-native ≥ 0.8× dnsmasq CPU per query',
    goalStatus: goal,
    uptimeAtStart,
    uptimeAtEnd,
    sets,
  }, { start: START });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
