#!/usr/bin/env node
// Idle CPU per agent of a lab of N idle agents (issue 18 item 3): lab up (no cluster, no service), wait until
// every agent sees N alive, settle, then read utime+stime of every agent from /proc over a window.
// usage: node scripts/idle-cpu.mjs N [preset=lan] [windowS=30] [settleS=10] [labName=i18g] [--prof DIR]
// SPAWNS=1: also count the processes the agents start during the window (nft, ip, ...): `perf record` of the
// sched_process_fork tracepoint machine-wide, kept where the parent is an agent (other helpers' forks are not
// counted); printed as spawnsPerMinPerAgent. Needs perf (linux-perf) and tracefs.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { labUp, labDown } from '../dist/src/lab/lab.js';
import { realExec } from '../dist/src/adapters/exec.js';
import { ApiClient } from '../dist/src/adapters/api/client.js';

const [nArg, preset = 'lan', winArg = '30', settleArg = '10', lab = 'i18g'] = process.argv.slice(2);
const N = Number(nArg);
const TCK = 100;
const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / TCK; // utime + stime + reaped children's (nft, ip), seconds
};
const rssOf = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const load0 = loadavg()[0];
// SPAWNS=1 also counts the join storm: forks by agents from lab up until the window starts (start-up, joins, settle).
const stormFile = `/tmp/idle-cpu-${lab}.storm.perf`;
const storm = process.env.SPAWNS ? spawn('perf', ['record', '-q', '-e', 'sched:sched_process_fork', '-a', '-o', stormFile], { stdio: 'ignore' }) : null;
if (storm) await new Promise((r) => setTimeout(r, 1000)); // perf is recording
/** Forks per agent pid recorded in a perf file (machine-wide record, kept where the parent is an agent). */
const forksByAgent = (file, pids) => {
  const agents = new Set(pids.map(String));
  const out = spawnSync('perf', ['script', '-F', 'pid,trace', '-i', file], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout;
  const by = new Map();
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s/.exec(line);
    if (m && agents.has(m[1])) by.set(m[1], (by.get(m[1]) ?? 0) + 1);
  }
  rmSync(file, { force: true });
  return pids.map((p) => by.get(String(p)) ?? 0).sort((a, b) => a - b);
};
const t0 = Date.now();
const s = await labUp(realExec, { name: lab, nodes: N, gossipPreset: preset, logLevel: 'warn', readyTimeoutMs: 120_000 });
try {
  const upMs = Date.now() - t0;
  const clients = s.nodes.map((n) => new ApiClient({ socketPath: n.socket, timeoutMs: 5000 }));
  const deadline = Date.now() + 180_000;
  let last = [];
  for (;;) {
    last = await Promise.all(clients.map(async (c) => {
      try {
        const ms = await c.call('GET', '/v1/gossip/members');
        const list = Array.isArray(ms) ? ms : ms.members;
        return list.filter((m) => m.state === 'alive').length;
      } catch { return -1; }
    }));
    if (last.every((x) => x === N)) break;
    if (Date.now() > deadline) throw new Error(`not converged: alive counts ${last.join(',')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const convMs = Date.now() - t0;
  const startCpu = s.nodes.map((n) => cpuOf(n.pid)).sort((a, b) => a - b);
  await new Promise((r) => setTimeout(r, Number(settleArg) * 1000));
  const pids = s.nodes.map((n) => n.pid);
  let stormSpawns = null;
  if (storm) {
    storm.kill('SIGINT');
    await new Promise((r) => storm.once('exit', r));
    const counts = forksByAgent(stormFile, pids);
    stormSpawns = { seconds: +((Date.now() - t0) / 1000).toFixed(1), total: counts.reduce((a, b) => a + b, 0), perAgentMedian: counts[Math.floor(N / 2)], perAgentMax: counts[N - 1] };
  }
  const c0 = pids.map(cpuOf); const w0 = Date.now(); const l1 = loadavg()[0];
  const perfFile = `/tmp/idle-cpu-${lab}.perf`;
  if (process.env.SPAWNS) {
    const r = spawnSync('perf', ['record', '-q', '-e', 'sched:sched_process_fork', '-a', '-o', perfFile, '--', 'sleep', String(Number(winArg))], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`perf record failed (status ${r.status})`);
  } else {
    await new Promise((r) => setTimeout(r, Number(winArg) * 1000));
  }
  const c1 = pids.map(cpuOf); const w1 = Date.now(); const l2 = loadavg()[0];
  const secs = (w1 - w0) / 1000;
  const per = c1.map((c, i) => (100 * (c - c0[i])) / secs);
  const rss = pids.map(rssOf);
  let spawns = null;
  if (process.env.SPAWNS) {
    const counts = forksByAgent(perfFile, pids);
    const perMin = (x) => +((60 * x) / secs).toFixed(1);
    spawns = { total: counts.reduce((a, b) => a + b, 0), perMinPerAgentMean: perMin(counts.reduce((a, b) => a + b, 0) / N),
      perMinPerAgentMedian: perMin(counts[Math.floor(N / 2)]), perMinPerAgentMax: perMin(counts[N - 1]) };
  }
  const sum = per.reduce((a, b) => a + b, 0);
  const sorted = [...per].sort((a, b) => a - b);
  console.log(JSON.stringify({
    N, preset, windowS: secs, upMs, convergedMs: convMs, loadStart: load0, loadWindowStart: l1, loadWindowEnd: l2,
    totalPctCore: +sum.toFixed(1), perAgentMeanPct: +(sum / N).toFixed(2), perAgentMedianPct: +sorted[Math.floor(N / 2)].toFixed(2),
    perAgentMaxPct: +sorted[N - 1].toFixed(2), rssMbMedian: +[...rss].sort((a, b) => a - b)[Math.floor(N / 2)].toFixed(1),
    startCpuSMedian: startCpu[Math.floor(N / 2)], startCpuSMax: startCpu[N - 1],
    aliveSeen: last.join(','), spawns, stormSpawns,
  }));
  if (process.env.KEEP) { console.log('KEEP set: lab left up; pids', pids.join(' ')); process.exit(0); }
} finally {
  if (storm && storm.exitCode === null) storm.kill('SIGINT');
  if (process.env.TERM_FIRST) { // graceful stop first (a --cpu-prof agent writes its profile on exit)
    for (const n of s.nodes) try { process.kill(n.pid, 'SIGTERM'); } catch { /* gone */ }
    const until = Date.now() + 20_000;
    while (Date.now() < until && s.nodes.some((n) => { try { process.kill(n.pid, 0); return true; } catch { return false; } })) await new Promise((r) => setTimeout(r, 200));
  }
  if (!process.env.KEEP) await labDown(realExec, lab);
}
