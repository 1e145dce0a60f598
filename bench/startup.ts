/**
 * Start-up benchmark (issue 16 §3): how long until a freshly exec'ed meshd is useful, and what
 * `meshd --help` / `netctl --help` cost, each against `node -e 0` measured in the same run.
 *
 *   npm run bench -- startup [--rounds 9] [--meshd PATH] [--netctl PATH] [--out startup]
 *                            [--baseline-meshd PATH --baseline-netctl PATH --baseline-name NAME]
 *
 * - `agent ready`: exec (nsenter into a lab host namespace, as the lab does) → the control socket
 *   answers GET /v1/health with ready:true. `agent gossip joined`: exec → the agent's own member
 *   list shows the other lab node alive. Peer: `nsenter … node -e 0` (the same exec path).
 *   The agent is a lab worker node with no cluster (what every node runs); its config is the lab's.
 * - `meshd --help`, `netctl --help`: exec → exit. Peer: `node -e 0`.
 * Rounds are interleaved (each round runs every command once, in the same order), so load on this
 * shared machine hits both sides alike; figures are medians, with min–max in each row's note.
 * The sockets are polled every 5 ms (the resolution of the agent wall rows).
 * Wall time is what a user waits, but on a shared, loaded machine it mostly measures the queue
 * for a CPU; CPU time (user + sys, children included: /usr/bin/time for the commands,
 * /proc/PID/stat at the moment the agent answers, 10 ms ticks) and peak RSS are also recorded,
 * as rows `… CPU` and `… peak RSS`, which load barely moves.
 * --meshd/--netctl measure another build under the same harness; --baseline-* add an older build
 * (e.g. the unbundled dist of an earlier commit) to every round, as extra rows `… (NAME)`.
 * Writes bench/results/startup.json (ratio = peer / ours: 1 would be as fast as a bare Node).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../src/adapters/api/client.js';
import { realExec } from '../src/adapters/exec.js';
import { labDown, labSignalAgent, labUp, MESHD_BIN, meshdCommand, readState } from '../src/lab/lab.js';
import { row, writeResults } from './lib/results.js';

const LAB = 'mst16';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median: Math.round(median), min: Math.round(v[0]!), max: Math.round(v[v.length - 1]!) };
}

interface Run {
  wallMs: number;
  cpuMs: number;
  rssMiB: number;
}

const timeOut = join(mkdtempSync(join(tmpdir(), 'meshd-startup-')), 'time');

/** One exec to exit: wall (ours), CPU and peak RSS (/usr/bin/time). A non-zero exit is an error (a broken build must not look fast). */
function timeExec(argv: string[]): Run {
  const t0 = now();
  const r = spawnSync('/usr/bin/time', ['-o', timeOut, '-f', '%U %S %M', ...argv], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wallMs = now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  const [u, sy, m] = readFileSync(timeOut, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { wallMs, cpuMs: (u! + sy!) * 1000, rssMiB: m! / 1024 };
}

/** CPU (self + reaped children) and peak RSS of a running process, from /proc. */
function procUsage(pid: number): { cpuMs: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14–17 (utime, stime, cutime, cstime) are 11–14 after the state field; USER_HZ is 100 on Linux
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs: ticks * 10, rssMiB: hwm ? Number(hwm[1]) / 1024 : NaN };
}

async function pollUntil(what: string, deadlineMs: number, f: () => Promise<boolean>): Promise<number> {
  const start = now();
  let last = 'nothing yet';
  for (;;) {
    try {
      if (await f()) return now();
      last = 'answered, not yet';
    } catch (e) {
      last = (e as Error).message;
    }
    if (now() - start > deadlineMs) throw new Error(`${what}: not after ${deadlineMs} ms (last: ${last})`);
    await sleep(5);
  }
}

function waitExit(pid: number): Promise<void> {
  return pollUntil(`agent pid ${pid} to exit`, 15_000, async () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }).then(() => undefined);
}

/** One cold start of n2's agent: exec → ready (with its CPU and peak RSS then), exec → joined (sees n1 alive); then SIGTERM and wait for exit. */
async function agentStart(meshd: string): Promise<{ ready: Run; joinedMs: number }> {
  // The config written by the lab; a baseline build reads the same file.
  const s = readState(LAB)!;
  const n = s.nodes[1]!;
  const client = new ApiClient({ socketPath: n.socket, timeoutMs: 1000 });
  const fd = openSync(n.log, 'a');
  const t0 = now();
  const child = spawn('nsenter', [`--net=/run/netns/${n.netns}`, '--', ...meshdCommand(meshd), '--config', n.config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  try {
    const ready = await pollUntil(`${n.name} /v1/health ready`, 30_000, async () => (await client.call<{ ready: boolean }>('GET', '/v1/health')).ready);
    // nsenter execs meshd in place (same pid); a shebang'd meshd runs as `env` → node, also in place.
    const usage = procUsage(child.pid!);
    const joined = await pollUntil(`${n.name} sees n1 alive`, 30_000, async () =>
      (await client.call<Array<{ name: string; state: string }>>('GET', '/v1/gossip/members')).some((m) => m.name === 'n1' && m.state === 'alive'));
    return { ready: { wallMs: ready - t0, ...usage }, joinedMs: joined - t0 };
  } catch (e) {
    const tail = readFileSync(n.log, 'utf8').split('\n').slice(-5).join('\n');
    throw new Error(`${(e as Error).message}\nlast log lines of ${n.name}:\n${tail}`);
  } finally {
    child.kill('SIGTERM');
    await waitExit(child.pid!);
  }
}

interface Build {
  name: string;
  meshd: string;
  netctl: string;
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '9'));
  const ours: Build = { name: '', meshd: arg('meshd', MESHD_BIN), netctl: arg('netctl', join(MESHD_BIN, '..', 'netctl.js')) };
  const out = arg('out', 'startup');
  const builds = [ours];
  // `tsc` alone writes unbundled files over the bundles (same path): say which kind each build is.
  const bundled = (f: string) => readFileSync(f, 'utf8').includes('__meshdRequire');
  if (arg('baseline-meshd', '')) builds.push({ name: arg('baseline-name', 'baseline'), meshd: arg('baseline-meshd', ''), netctl: arg('baseline-netctl', '') });
  for (const b of builds) process.stderr.write(`${b.name || 'ours'}: ${b.meshd} (${bundled(b.meshd) ? 'bundle' : 'NOT bundled: run npm run build'})\n`);
  await labDown(realExec, LAB).catch(() => undefined);
  const loadBefore = loadavg().map((x) => Math.round(x * 10) / 10);
  const lab = await labUp(realExec, { name: LAB, nodes: 2, meshd: ours.meshd, logLevel: 'warn' });
  const peer = { e0: [] as Run[], nsE0: [] as Run[] };
  const per = builds.map(() => ({ meshdHelp: [] as Run[], netctlHelp: [] as Run[], ready: [] as Run[], joined: [] as number[] }));
  try {
    // The lab started n2; from now on this harness starts it, once per round and build.
    const pid = labSignalAgent(LAB, 'n2', 'SIGTERM');
    await waitExit(pid);
    const ns = lab.nodes[1]!.netns;
    for (let r = 0; r < rounds + 1; r++) {
      const warm = r === 0; // the first round fills the page cache for every build; not counted
      const e0 = timeExec([process.execPath, '-e', '0']);
      const nse0 = timeExec(['nsenter', `--net=/run/netns/${ns}`, '--', process.execPath, '-e', '0']);
      const got = [];
      for (const b of builds) {
        const mh = timeExec([...meshdCommand(b.meshd), '--help']);
        const a = await agentStart(b.meshd);
        const nh = timeExec([...meshdCommand(b.netctl), '--help']);
        got.push({ mh, a, nh });
      }
      if (warm) continue;
      peer.e0.push(e0);
      peer.nsE0.push(nse0);
      got.forEach((g, i) => {
        per[i]!.meshdHelp.push(g.mh);
        per[i]!.netctlHelp.push(g.nh);
        per[i]!.ready.push(g.a.ready);
        per[i]!.joined.push(g.a.joinedMs);
      });
      const o = got[0]!;
      process.stderr.write(`round ${r}/${rounds}: node -e 0 ${e0.wallMs.toFixed(0)} ms, meshd --help ${o.mh.wallMs.toFixed(0)}, netctl --help ${o.nh.wallMs.toFixed(0)}, agent ready ${o.a.ready.wallMs.toFixed(0)} (CPU ${o.a.ready.cpuMs}), joined ${o.a.joinedMs.toFixed(0)}\n`);
    }
  } finally {
    await labDown(realExec, LAB);
    rmSync(join(timeOut, '..'), { recursive: true, force: true });
  }
  const mk = (metric: string, unit: string, o: number[], p: number[], peerName: string) => {
    const a = stats(o);
    const b = stats(p);
    return row(metric, unit, a.median, b.median, peerName, 'lower', `median of ${o.length} interleaved rounds; ours ${a.min}–${a.max}, peer ${b.min}–${b.max} ${unit}`);
  };
  const wall = (xs: Run[]) => xs.map((x) => x.wallMs);
  const cpu = (xs: Run[]) => xs.map((x) => x.cpuMs);
  const rss = (xs: Run[]) => xs.map((x) => x.rssMiB);
  const rows = builds.flatMap((b, i) => {
    const d = per[i]!;
    const sfx = b.name ? ` (${b.name})` : '';
    return [
      mk(`agent ready${sfx}`, 'ms', wall(d.ready), wall(peer.nsE0), 'nsenter … node -e 0'),
      mk(`agent gossip joined${sfx}`, 'ms', d.joined, wall(peer.nsE0), 'nsenter … node -e 0'),
      mk(`meshd --help${sfx}`, 'ms', wall(d.meshdHelp), wall(peer.e0), 'node -e 0'),
      mk(`netctl --help${sfx}`, 'ms', wall(d.netctlHelp), wall(peer.e0), 'node -e 0'),
      mk(`agent ready CPU${sfx}`, 'ms CPU', cpu(d.ready), cpu(peer.nsE0), 'nsenter … node -e 0'),
      mk(`meshd --help CPU${sfx}`, 'ms CPU', cpu(d.meshdHelp), cpu(peer.e0), 'node -e 0'),
      mk(`netctl --help CPU${sfx}`, 'ms CPU', cpu(d.netctlHelp), cpu(peer.e0), 'node -e 0'),
      mk(`agent peak RSS at ready${sfx}`, 'MiB', rss(d.ready), rss(peer.nsE0), 'nsenter … node -e 0'),
      mk(`meshd --help peak RSS${sfx}`, 'MiB', rss(d.meshdHelp), rss(peer.e0), 'node -e 0'),
    ];
  });
  const round = (xs: Run[]) => xs.map((x) => ({ wallMs: Math.round(x.wallMs), cpuMs: x.cpuMs, rssMiB: Math.round(x.rssMiB) }));
  writeResults(out, rows, {
    loadavg: { before: loadBefore, after: loadavg().map((x) => Math.round(x * 10) / 10) },
    builds: builds.map((b) => ({ ...b, bundled: bundled(b.meshd) })),
    rounds,
    samples: { nodeE0: round(peer.e0), nsNodeE0: round(peer.nsE0), builds: per.map((d) => ({ meshdHelp: round(d.meshdHelp), netctlHelp: round(d.netctlHelp), ready: round(d.ready), joinedMs: d.joined.map(Math.round) })) },
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`startup bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
