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
 * The sockets are polled every 5 ms (the resolution of the agent rows).
 * --meshd/--netctl measure another build under the same harness; --baseline-* add an older build
 * (e.g. the unbundled dist of an earlier commit) to every round, as extra rows `… (NAME)`.
 * Writes bench/results/startup.json (ratio = peer / ours: 1 would be as fast as a bare Node).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
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

/** Wall time of one exec to exit, ms; a non-zero exit is an error (a broken build must not look fast). */
function timeExec(argv: string[]): number {
  const t0 = now();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = now() - t0;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
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

/** One cold start of n2's agent: exec → ready, exec → joined (sees n1 alive); then SIGTERM and wait for exit. */
async function agentStart(meshd: string): Promise<{ ready: number; joined: number }> {
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
    const joined = await pollUntil(`${n.name} sees n1 alive`, 30_000, async () =>
      (await client.call<Array<{ name: string; state: string }>>('GET', '/v1/gossip/members')).some((m) => m.name === 'n1' && m.state === 'alive'));
    return { ready: ready - t0, joined: joined - t0 };
  } catch (e) {
    const tail = readFileSync(n.log, 'utf8').split('\n').slice(-5).join('\n');
    throw new Error(`${(e as Error).message}\nlast log lines of ${n.name}:\n${tail}`);
  } finally {
    child.kill('SIGTERM');
    await waitExit(child.pid!);
  }
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '9'));
  const meshd = arg('meshd', MESHD_BIN);
  const netctl = arg('netctl', join(MESHD_BIN, '..', 'netctl.js'));
  const out = arg('out', 'startup');
  const baseMeshd = arg('baseline-meshd', '');
  const baseNetctl = arg('baseline-netctl', '');
  const baseName = arg('baseline-name', 'baseline');
  await labDown(realExec, LAB).catch(() => undefined);
  const loadBefore = loadavg().map((x) => Math.round(x * 10) / 10);
  const lab = await labUp(realExec, { name: LAB, nodes: 2, meshd, logLevel: 'warn' });
  const samples: Record<string, number[]> = { nodeE0: [], nsNodeE0: [], meshdHelp: [], netctlHelp: [], ready: [], joined: [], baseMeshdHelp: [], baseNetctlHelp: [], baseReady: [], baseJoined: [] };
  try {
    // The lab started n2; from now on this harness starts it, once per round.
    const pid = labSignalAgent(LAB, 'n2', 'SIGTERM');
    await waitExit(pid);
    const ns = lab.nodes[1]!.netns;
    for (let r = 0; r < rounds + 1; r++) {
      const warm = r === 0; // the first round fills the page cache for both sides; not counted
      const e0 = timeExec([process.execPath, '-e', '0']);
      const mh = timeExec([...meshdCommand(meshd), '--help']);
      const nse0 = timeExec(['nsenter', `--net=/run/netns/${ns}`, '--', process.execPath, '-e', '0']);
      const a = await agentStart(meshd);
      const nh = timeExec([...meshdCommand(netctl), '--help']);
      const base = baseMeshd
        ? { mh: timeExec([...meshdCommand(baseMeshd), '--help']), a: await agentStart(baseMeshd), nh: timeExec([...meshdCommand(baseNetctl), '--help']) }
        : undefined;
      if (warm) continue;
      if (base) {
        samples.baseMeshdHelp!.push(base.mh);
        samples.baseNetctlHelp!.push(base.nh);
        samples.baseReady!.push(base.a.ready);
        samples.baseJoined!.push(base.a.joined);
      }
      samples.nodeE0!.push(e0);
      samples.meshdHelp!.push(mh);
      samples.nsNodeE0!.push(nse0);
      samples.ready!.push(a.ready);
      samples.joined!.push(a.joined);
      samples.netctlHelp!.push(nh);
      process.stderr.write(`round ${r}/${rounds}: node -e 0 ${e0.toFixed(0)} ms, meshd --help ${mh.toFixed(0)}, netctl --help ${nh.toFixed(0)}, agent ready ${a.ready.toFixed(0)}, joined ${a.joined.toFixed(0)}\n`);
    }
  } finally {
    await labDown(realExec, LAB);
  }
  const mk = (metric: string, ours: number[], peer: number[], peerName: string) => {
    const o = stats(ours);
    const p = stats(peer);
    return row(metric, 'ms', o.median, p.median, peerName, 'lower', `median of ${ours.length} interleaved rounds; ours ${o.min}–${o.max}, peer ${p.min}–${p.max} ms`);
  };
  writeResults(out, [
    mk('agent ready', samples.ready!, samples.nsNodeE0!, 'nsenter … node -e 0'),
    mk('agent gossip joined', samples.joined!, samples.nsNodeE0!, 'nsenter … node -e 0'),
    mk('meshd --help', samples.meshdHelp!, samples.nodeE0!, 'node -e 0'),
    mk('netctl --help', samples.netctlHelp!, samples.nodeE0!, 'node -e 0'),
    ...(baseMeshd ? [
      mk(`agent ready (${baseName})`, samples.baseReady!, samples.nsNodeE0!, 'nsenter … node -e 0'),
      mk(`agent gossip joined (${baseName})`, samples.baseJoined!, samples.nsNodeE0!, 'nsenter … node -e 0'),
      mk(`meshd --help (${baseName})`, samples.baseMeshdHelp!, samples.nodeE0!, 'node -e 0'),
      mk(`netctl --help (${baseName})`, samples.baseNetctlHelp!, samples.nodeE0!, 'node -e 0'),
    ] : []),
  ], { loadavg: { before: loadBefore, after: loadavg().map((x) => Math.round(x * 10) / 10) }, meshd, netctl, rounds, ...(baseMeshd ? { baseline: { name: baseName, meshd: baseMeshd, netctl: baseNetctl } } : {}), samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => Math.round(x))])) });
}

main().catch((e: unknown) => {
  process.stderr.write(`startup bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
