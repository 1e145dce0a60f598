/**
 * Scheduler benchmark (core only): place 1k / 10k / 100k pending tasks on 1,000
 * simulated nodes with constraints and spread, timing schedule() alone (task and node
 * objects are built outside the timed region). Also: placement preferences, 100
 * services, and swarmkit's own shape (no constraints, one service).
 *
 * Peer: swarmkit's BenchmarkScheduler1kNodes{1k,10k,100k}Tasks. Debian packages no
 * swarmkit (`apt-cache search swarmkit` is empty), so it cannot be built offline here and
 * the peer column holds swarmkit's PUBLISHED figures, not a run here — see `note`.
 *
 * Method (why: last session's run at load 1.2 was rejected — 1k placement went 4.1 → 1.0 ms over its five
 * rounds and the reconcile 21.7 → 11 ms, i.e. the rounds measured the JIT warming up and whatever else ran,
 * not the scheduler):
 * - The figure is the MAIN THREAD's CPU time (/proc/thread-self/schedstat, ns), not wall time: what is
 *   measured is a cost — the CPU one placement takes — and a run that waits for the CPU behind other work is
 *   not slower code. Not the whole process's CPU (process.cpuUsage): that adds V8's helper threads (concurrent
 *   sweeping after the forced GC, background compiles), whose work lands in a sample at random — a first try
 *   with it spread 1k placement 1.6–6.4 ms at load 15. The process CPU and the wall time of every round are
 *   kept in `timings` for reference. swarmkit's published ns/op is a Go benchmark's wall time on an otherwise
 *   idle machine, where wall and CPU time agree.
 * - One whole WARM-UP ROUND (SAMPLES samples) per shape is run and DISCARDED: the first runs of a shape are
 *   its JIT tier-ups and inline-cache misses.
 * - A forced full GC (v8 gc(), outside the timed region) before every sample: the garbage of building the
 *   inputs and of the previous sample is not collected inside the next one at a random moment. GC caused by
 *   schedule()'s own allocation stays inside, as it should.
 * - A sample times a BATCH of `k` runs on fresh inputs (k from the warm-up: about TARGET_SAMPLE_MS of CPU per
 *   sample, at most MAX_BATCH), and the figure is the CPU per run: the 1k shape takes ~1–2 ms, about its
 *   floor, where one run is a draw. The floor per run is FLOOR_MS / k (one sample is known to ± FLOOR_MS).
 * - BENCH_ROUNDS rounds (default 5) of BENCH_SAMPLES samples (default 5); a round's figure is their median.
 *   The peer is a constant, so a row's spread is our own: a result whose per-round figures spread more than
 *   1.5× beyond the floor is rejected instead of written (bench/lib/rounds.ts).
 *   BENCH_ROUNDS=5 BENCH_SAMPLES=5 node dist/bench/scheduler.js
 */
import { performance } from 'node:perf_hooks';
import { reconcile } from '../src/core/orchestrator/reconcile.js';
import { schedule } from '../src/core/scheduler/scheduler.js';
import type { Node, ServiceSpec, Task } from '../src/core/spec/types.js';
import { taskSpecOf } from '../src/core/spec/types.js';
import { parseServiceSpec } from '../src/core/spec/validate.js';
import { exposeGc, processCpuMs, threadCpuMs } from './lib/cpu.js';
import { batchSize, median, perRound } from './lib/rounds.js';
import { pairedRow, snapshot, writeResults } from './lib/results.js';
import type { BenchRow } from './lib/results.js';

const START = snapshot();
/** Counted rounds per shape (after one discarded warm-up round). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Samples per round; the round's figure is their median. */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
/**
 * ± resolution of one timed sample, in ms of CPU: a minor GC or a JIT tier-up inside the timed region costs
 * about this much on this machine (the thread's CPU clock itself resolves ns). Per run: FLOOR_MS / batch.
 * The peer is published: floor 0.
 */
const FLOOR_MS = 1;
/** CPU a sample should take (ms): ≥ 20× the floor, so a sample is a figure, not a draw. */
const TARGET_SAMPLE_MS = 20;
/** Runs per sample at most (the 1k shape needs ~10–20; bounds memory for the fresh inputs). */
const MAX_BATCH = 50;

const gc = exposeGc();
threadCpuMs(); // throws here, before any work, on a kernel without schedstat

const NODES = 1000;
const ZONES = 10;
/** swarmkit's published ns/op for 1k nodes × {1k, 10k, 100k} tasks, in ms. */
const SWARMKIT_PUBLISHED_MS: Record<number, number> = { 1000: 189, 10000: 1800, 100000: 22600 };

function makeNodes(): Node[] {
  return Array.from({ length: NODES }, (_, i) => ({
    id: `node-${String(i).padStart(4, '0')}`,
    hostname: `host-${i}`,
    role: i % 10 === 0 ? 'manager' : 'worker',
    availability: 'active',
    state: 'ready',
    labels: { zone: `z${i % ZONES}`, rack: `r${Math.floor(i / 50)}` },
    resources: { cpuMilli: 64_000, memoryBytes: 256 * 2 ** 30 },
  }));
}

function makeTasks(spec: ServiceSpec, serviceId: string, n: number, prefix: string): Task[] {
  const ts = taskSpecOf(spec);
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`, serviceId, slot: i + 1, specVersion: 1, spec: ts,
    desiredState: 'running', state: 'pending', timestamps: { created: 0, updated: 0 },
  }));
}

const constrained = parseServiceSpec({
  name: 'web', image: 'whoami:1', runtime: 'netns', mode: { replicated: { replicas: 10000 } },
  constraints: ['node.role==worker', 'node.labels.zone!=z9'],
  resources: { cpuMilli: 10, memoryBytes: 16 * 2 ** 20 },
});
const withPrefs = parseServiceSpec({ ...constrained, preferences: [{ spread: 'node.labels.zone' }, { spread: 'node.labels.rack' }] });
const bare = parseServiceSpec({ name: 'web', image: 'whoami:1', runtime: 'netns' });

/** One timed sample: gc(), then `batch` runs of `fn` on inputs made before the clock starts. */
function sample<I, R>(batch: number, mk: () => I, fn: (input: I) => R): { cpu: number; proc: number; wall: number; results: R[] } {
  const inputs = Array.from({ length: batch }, mk);
  gc();
  const results: R[] = [];
  const w0 = performance.now();
  const p0 = processCpuMs();
  const c0 = threadCpuMs();
  for (const x of inputs) results.push(fn(x));
  const cpu = (threadCpuMs() - c0) / batch;
  const proc = (processCpuMs() - p0) / batch;
  const wall = (performance.now() - w0) / batch;
  return { cpu, proc, wall, results };
}

interface Timed {
  label: string;
  /** CPU ms per run, one figure per counted round (median of its samples). */
  cpu: number[];
  /** Process CPU ms (every thread) and wall ms per run, likewise (reference only). */
  proc: number[];
  wall: number[];
  batch: number;
}

/**
 * Times `fn` in one discarded warm-up round and ROUNDS counted rounds of SAMPLES samples, each sample a batch
 * sized from the warm-up; `check` sees every result.
 */
function measure<I, R>(label: string, mk: () => I, fn: (input: I) => R, check: (r: R) => void): Timed {
  const warm: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const s = sample(1, mk, fn);
    s.results.forEach(check);
    warm.push(s.cpu);
  }
  const batch = batchSize(median(warm)!, TARGET_SAMPLE_MS, MAX_BATCH);
  const cpu: number[] = [];
  const proc: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < ROUNDS * SAMPLES; i++) {
    const s = sample(batch, mk, fn);
    s.results.forEach(check);
    cpu.push(s.cpu);
    proc.push(s.proc);
    wall.push(s.wall);
  }
  const t: Timed = { label, cpu: perRound(cpu, SAMPLES, 2), proc: perRound(proc, SAMPLES, 2), wall: perRound(wall, SAMPLES, 2), batch };
  console.log(`${label}: CPU median ${median(t.cpu)!.toFixed(2)} ms/run, rounds ${Math.min(...t.cpu)}–${Math.max(...t.cpu)} (process CPU ${Math.min(...t.proc)}–${Math.max(...t.proc)}, wall ${Math.min(...t.wall)}–${Math.max(...t.wall)}); warm-up round discarded (${median(warm)!.toFixed(2)} ms), ${ROUNDS} × ${SAMPLES} samples of ${batch} run(s)`);
  return t;
}

/** Every task placed, evenly (± 1, ± 2 with preferences), and only on eligible nodes. */
function placement(label: string, nodes: Node[], eligible: (n: Node) => boolean): (res: ReturnType<typeof schedule>) => void {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return (res) => {
    if (res.unschedulable.length) throw new Error(`${label}: ${res.unschedulable.length} unschedulable: ${res.unschedulable[0]!.reason}`);
    const per = new Map<string, number>();
    for (const a of res.assignments) per.set(a.nodeId, (per.get(a.nodeId) ?? 0) + 1);
    const counts = nodes.filter(eligible).map((n) => per.get(n.id) ?? 0);
    if (Math.max(...counts) - Math.min(...counts) > 1 + (label.includes('pref') ? 1 : 0)) throw new Error(`${label}: uneven spread ${Math.min(...counts)}..${Math.max(...counts)}`);
    if ([...per.keys()].some((id) => !eligible(byId.get(id)!))) throw new Error(`${label}: constraint violated`);
  };
}

/** The row's timing options: per-run floor of a batch, samples behind each round's figure. */
const timing = (t: Timed) => ({ kind: 'time' as const, floor: FLOOR_MS / t.batch, samplesPerRound: SAMPLES });
const timings: Record<string, { batch: number; threadCpuMs: number[]; processCpuMs: number[]; wallMs: number[] }> = {};
const keep = (t: Timed): number[] => {
  timings[t.label] = { batch: t.batch, threadCpuMs: t.cpu, processCpuMs: t.proc, wallMs: t.wall };
  return t.cpu;
};

const nodes = makeNodes();
const eligibleC = (n: Node) => n.role === 'worker' && n.labels.zone !== 'z9';
const rows: BenchRow[] = [];
const peerNote = 'peer = swarmkit\'s PUBLISHED figure (BenchmarkScheduler1kNodes*Tasks), NOT run here: Debian packages no swarmkit (apt-cache search swarmkit finds nothing), so its scheduler benchmark cannot be built offline from Debian Go packages. swarmkit\'s run also includes its memory store and watch round-trip, uses no constraints and a different machine; ours is the pure core only, with constraints and spread.';
/** Said on every row: what the figure leaves out. */
const cpuNote = 'main-thread CPU per run; V8 helper threads (parallel/concurrent GC, sweeping after the forced gc()) add about as much again — timings[label].processCpuMs has the whole process';
const oursOnly = (t: Timed, note: string) => ({ ...timing(t), note: `${note}; ${cpuNote}` });
const published = (t: Timed) => ({ ...timing(t), peerFloor: 0, note: `${peerNote} ${cpuNote}` });
for (const n of [1000, 10000, 100000]) {
  const t = measure(`constraints+spread ${n}`, () => makeTasks(constrained, 'web', n, 't'), (x) => schedule(x, nodes, []), placement(`constraints+spread ${n}`, nodes, eligibleC));
  const ms = keep(t);
  rows.push(pairedRow(`place ${n / 1000}k tasks on 1k nodes (2 constraints, spread)`, 'ms', ms, ms.map(() => SWARMKIT_PUBLISHED_MS[n]!), 'swarmkit (published)', 'lower', published(t)));
}
const bare100k = measure('no constraints 100k (swarmkit shape)', () => makeTasks(bare, 'web', 100000, 't'), (x) => schedule(x, nodes, []), placement('no constraints 100k', nodes, () => true));
const bareMs = keep(bare100k);
rows.push(pairedRow('place 100k tasks on 1k nodes (no constraints, swarmkit bench shape)', 'ms', bareMs, bareMs.map(() => SWARMKIT_PUBLISHED_MS[100000]!), 'swarmkit (published)', 'lower', published(bare100k)));
const pref = measure('pref zone>rack 100k', () => makeTasks(withPrefs, 'web', 100000, 't'), (x) => schedule(x, nodes, []), placement('pref zone>rack 100k', nodes, eligibleC));
rows.push(pairedRow('place 100k tasks on 1k nodes (constraints + preferences zone>rack)', 'ms', keep(pref), null, 'swarmkit', 'lower', oursOnly(pref, 'no published swarmkit figure for this shape')));
const svcs = Array.from({ length: 100 }, (_, i) => ({ id: `svc${i}`, spec: parseServiceSpec({ ...constrained, name: `svc${i}` }) }));
const multi = measure('100 services x 1k', () => svcs.flatMap((s) => makeTasks(s.spec, s.id, 1000, `${s.id}-`)), (x) => schedule(x, nodes, []), placement('100 services x 1k', nodes, eligibleC));
rows.push(pairedRow('place 100 services x 1k tasks on 1k nodes (constraints, spread)', 'ms', keep(multi), null, 'swarmkit', 'lower', oursOnly(multi, 'no published swarmkit figure for this shape')));

// Orchestrator pass over 10k placed tasks after a node dies (its tasks are replaced).
{
  const svc = { id: 'web', version: 1, spec: parseServiceSpec({ ...constrained, mode: { replicated: { replicas: 10000 } } }) };
  const placed = schedule(makeTasks(svc.spec, 'web', 10000, 't'), nodes, []);
  const at = new Map(placed.assignments.map((x) => [x.taskId, x.nodeId]));
  const tasks: Task[] = makeTasks(svc.spec, 'web', 10000, 't').map((t) => ({ ...t, nodeId: at.get(t.id)!, state: 'running' }));
  const ids = (() => { let i = 0; return () => `r${++i}`; })();
  const deadNodes = nodes.map((n) => (n.id === 'node-0001' ? { ...n, state: 'down' as const } : n));
  let replaced = 0;
  const t = measure('reconcile 10k tasks, 1 node down', () => null, () => reconcile({ services: [svc], nodes: deadNodes, tasks, now: 0, newId: ids }), (res) => {
    replaced = res.actions.filter((x) => x.type === 'createTask').length;
    if (replaced === 0) throw new Error('reconcile with a node down replaced no task');
  });
  rows.push(pairedRow('reconcile 10k-replica service on 1k nodes, one node down', 'ms', keep(t), null, 'swarmkit', 'lower', oursOnly(t, `orchestrator core only; ${replaced} tasks replaced; no published swarmkit figure`)));
}

const goal = rows[2]!.ours < 2000;
console.log(`goal 100k < 2 s: ${goal ? 'met' : 'NOT met'} (${rows[2]!.ours} ms)`);
writeResults('scheduler', rows, {
  nodes: NODES,
  rounds: ROUNDS,
  samplesPerRound: SAMPLES,
  floorMsPerSample: FLOOR_MS,
  unit: 'main-thread CPU ms per run (/proc/thread-self/schedstat); process CPU and wall per round in timings, for reference',
  warmUp: 'one round of SAMPLES single runs per shape, discarded',
  timings,
  goal: { metric: '100k tasks, constraints + spread, core only', limitMs: 2000, met: goal },
  peerNote,
}, { start: START });
