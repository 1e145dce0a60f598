/**
 * Convergence benchmark (issue 18 item 1): on a lab of N nodes (lab `bcv`), how long from a new
 * endpoint's publication — and from the manager's commit — until the LAST node's LB and DNS hold it,
 * measured with the convergence receipts themselves (src/core/convergence: every node acks once its
 * LB transaction holding the endpoint is applied and its DNS registry answers from it).
 *
 * One change = `service scale probe=K+1` (the manager commits a new task; its node starts it and
 * publishes the endpoint). Its figures come from n1's `GET /v1/convergence`: publication → last ack
 * (`totalMs`) and commit → last ack (the scale call's start → startedAt + totalMs, same machine so
 * one clock). The probe service's tasks are `sleep` processes (netns runtime: a command in its own
 * namespace, cheap), scaled up one at a time to MAX_TASKS, then back to 1 (not measured).
 * Two phases: alone, then under churn (a second service scaled up and down in the background aiming
 * at CHURN endpoint changes per second; the rate reached is recorded — on 2 loaded cores it is far
 * below 100/s, and the row says so).
 *
 * Peer: Docker swarm has no convergence bound at all; its documented floor is a fixed 2 s sleep
 * before a task is considered gone/added (the comparison is against that constant, not a run here).
 *
 *   node dist/bench/convergence.js [--nodes 10] [--changes 200] [--churn 100]
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { ApiClient } from '../src/adapters/api/client.js';
import { realExec } from '../src/adapters/exec.js';
import type { ChangeView } from '../src/core/convergence/index.js';
import { labDown, labUp } from '../src/lab/lab.js';
import { nodeSocket } from '../src/lab/plan.js';
import { row, snapshot, writeResults, type BenchRow } from './lib/results.js';

const START = snapshot();
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const NODES = arg('nodes', 10);
const CHANGES = arg('changes', 200);
const CHURN = arg('churn', 100);
const MAX_TASKS = arg('max-tasks', 10);
const LAB = 'bcv';
const SWARM_FLOOR_MS = 2000;
const NETCTL = new URL('../src/bin/netctl.js', import.meta.url).pathname;

function netctl(node: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(process.execPath, [NETCTL, '--lab', LAB, '--node', node, ...args], { timeout: 300_000 }, (err, stdout, stderr) => {
    if (err) reject(new Error(`netctl ${args.join(' ')}: ${stderr || err.message}`));
    else resolve(stdout);
  }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function percentile(xs: readonly number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Sample { publishToLastMs: number; commitToLastMs: number; slowest: string | null }

/** One scale-up of `probe`, timed by the receipts n1 collects; null when it did not complete in 60 s. */
async function oneChange(n1: ApiClient, replicas: number): Promise<Sample | null> {
  const t0 = Date.now();
  await netctl('n1', 'service', 'scale', '-d', `probe=${replicas}`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const v = await n1.call<{ changes: ChangeView[] }>('GET', `/v1/convergence?service=probe&since=${t0}&limit=50`);
    const done = v.changes.find((c) => c.complete && c.totalMs !== null);
    if (done) return { publishToLastMs: done.totalMs!, commitToLastMs: done.startedAt + done.totalMs! - t0, slowest: done.slowest };
    await sleep(25);
  }
  return null;
}

/** Background churn: `churn` scaled between 0 and a step size, aiming at `rate` endpoint changes/s. */
function startChurn(rate: number): { stop: () => Promise<{ changes: number; seconds: number }> } {
  let stopped = false;
  let changes = 0;
  const step = Math.max(1, Math.min(10, Math.round(rate / 10)));
  const began = Date.now();
  const run = (async () => {
    let up = false;
    while (!stopped) {
      const t = Date.now();
      up = !up;
      try {
        await netctl('n1', 'service', 'scale', '-d', `churn=${up ? step : 0}`);
        changes += step;
      } catch (e) {
        console.error(`churn: ${(e as Error).message}`);
      }
      const wait = (step / rate) * 1000 - (Date.now() - t);
      if (wait > 0) await sleep(wait);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await run;
      return { changes, seconds: (Date.now() - began) / 1000 };
    },
  };
}

async function phase(n1: ApiClient, label: string, count: number): Promise<Sample[]> {
  const out: Sample[] = [];
  let replicas = 1;
  let missed = 0;
  for (let i = 0; i < count; i++) {
    if (replicas >= MAX_TASKS) {
      await netctl('n1', 'service', 'scale', 'probe=1'); // waits until converged (drains confirmed)
      replicas = 1;
    }
    replicas++;
    const s = await oneChange(n1, replicas);
    if (s) out.push(s);
    else missed++;
    if ((i + 1) % 10 === 0) console.error(`${label}: ${i + 1}/${count} changes (p50 so far ${percentile(out.map((x) => x.publishToLastMs), 50)} ms)`);
  }
  if (missed) console.error(`${label}: ${missed} change(s) not complete within 60 s`);
  await netctl('n1', 'service', 'scale', 'probe=1');
  return out;
}

async function main(): Promise<void> {
  await labDown(realExec, LAB).catch(() => undefined);
  const load0 = loadavg()[0]!;
  const lab = await labUp(realExec, { name: LAB, nodes: NODES, onProgress: (m) => console.error(`lab: ${m}`) });
  try {
    await netctl('n1', 'cluster', 'init');
    const token = (await netctl('n1', 'cluster', 'join-token', 'worker', '-q')).trim();
    const file = `/run/meshd/${LAB}/worker.token`;
    writeFileSync(file, token + '\n', { mode: 0o600 });
    for (const n of lab.nodes.slice(1)) await netctl(n.name, 'cluster', 'join', '--token-file', file, `${lab.nodes[0]!.underlay}:2377`);
    await netctl('n1', 'network', 'create', '-d', 'overlay', 'app');
    // Every node on `app` (global service): all N nodes must ack each change.
    await netctl('n1', 'service', 'create', '--name', 'anchor', '--mode', 'global', '--runtime', 'netns', '--network', 'app', 'sleep', 'sleep', '1000000');
    await netctl('n1', 'service', 'create', '--name', 'probe', '--replicas', '1', '--runtime', 'netns', '--network', 'app', 'sleep', 'sleep', '1000000');
    await netctl('n1', 'service', 'create', '--name', 'churn', '--replicas', '0', '--runtime', 'netns', '--network', 'app', 'sleep', 'sleep', '1000000');
    const n1 = new ApiClient({ socketPath: nodeSocket(LAB, 'n1') });

    const alone = await phase(n1, 'alone', CHANGES);
    const churn = startChurn(CHURN);
    const loaded = await phase(n1, `churn ${CHURN}/s`, CHANGES);
    const achieved = await churn.stop();
    const churnRate = achieved.changes / achieved.seconds;
    await netctl('n1', 'service', 'scale', 'churn=0');

    const rows: BenchRow[] = [];
    const note = `peer: Docker swarm has no convergence bound; its documented floor is a fixed ${SWARM_FLOOR_MS} ms sleep (a constant, not a run here)`;
    for (const [name, xs, extra] of [['alone', alone, ''], ['churn', loaded, ` (churn aimed ${CHURN}/s, reached ${churnRate.toFixed(1)} endpoint changes/s)`]] as const) {
      for (const p of [50, 99]) {
        const pub = percentile(xs.map((x) => x.publishToLastMs), p);
        const com = percentile(xs.map((x) => x.commitToLastMs), p);
        if (pub !== null) rows.push(row(`p${p} publication → last node's LB+DNS, ${name}, N=${NODES}`, 'ms', pub, SWARM_FLOOR_MS, 'docker swarm 2 s sleep', 'lower', `${xs.length} changes${extra}; ${note}`));
        if (com !== null) rows.push(row(`p${p} manager commit → last node's LB+DNS, ${name}, N=${NODES}`, 'ms', com, SWARM_FLOOR_MS, 'docker swarm 2 s sleep', 'lower', `${xs.length} changes${extra}; includes scheduling and the task's start`));
      }
    }
    const slowest: Record<string, number> = {};
    for (const s of [...alone, ...loaded]) if (s.slowest) slowest[s.slowest] = (slowest[s.slowest] ?? 0) + 1;
    writeResults('convergence', rows, {
      params: { nodes: NODES, changes: CHANGES, churnAimedPerS: CHURN, churnReachedPerS: Math.round(churnRate * 10) / 10, maxTasks: MAX_TASKS, loadavgBeforeLab: load0 },
      slowestNodeCounts: slowest,
      caveat: 'one run on a shared 2-core machine; the p99 goal (< 1 s at 10 nodes) is claimed only if a row above shows it at N=10',
    }, { start: START });
  } finally {
    await labDown(realExec, LAB).catch((e: Error) => console.error(`lab down: ${e.message}`));
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exitCode = 1;
});
