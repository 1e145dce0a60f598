/**
 * `npm run chaos -- --minutes M --seed S`: the chaos soak (ARCHITECTURE §4 case 18, issue 13
 * items 5–6). Not part of `npm test`: it runs for minutes.
 *
 * A 5-node lab `mchaos` (3 managers on etcd, 2 workers; setup.ts) under two request loops
 * (load.ts) takes a seeded random schedule of faults (faults.ts), one at a time: after each the
 * driver waits for the cluster to converge (view.ts) and times it. When the time is up, faults
 * stop; the cluster must converge and hold every invariant, checked through netctl on every
 * node. Every request is put on its fault and classified (report.ts). Writes
 * bench/results/chaos.json; prints the seed and the timeline when an invariant breaks, and exits 1.
 * The lab and etcd are removed at the end, on errors and on Ctrl-C.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Load } from './load.js';
import { Faults, KINDS, sleep, type Fault } from './faults.js';
import { classify, summarize, type EmptyPeriods, type TaskEvent } from './report.js';
import { CLIENT_SVC, MESH_SVC, NAME_IMAGES, NAME_SVC, PORT, setupCluster, teardown } from './setup.js';
import { apiSnapshot, cliSnapshot, live, managerNodes, managerView, problems } from './view.js';

const LAB = 'mchaos';
const CONVERGE_BOUND_MS = 120_000;

function args(argv: string[]): { minutes: number; seed: number; out: string } {
  const o = { minutes: 3, seed: Math.floor(Math.random() * 2 ** 31), out: join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results', 'chaos.json') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (k === '--minutes' && v && Number(v) > 0) o.minutes = Number(v);
    else if (k === '--seed' && v && /^\d+$/.test(v)) o.seed = Number(v);
    else if (k === '--out' && v) o.out = v;
    else {
      process.stderr.write(`usage: npm run chaos -- [--minutes M (default 3)] [--seed S (integer)] [--out FILE]\nbad argument: ${k} ${v ?? ''}\n`);
      process.exit(2);
    }
  }
  return o;
}

async function main(): Promise<number> {
  const o = args(process.argv.slice(2));
  const t0 = Date.now();
  const timeline: Array<{ t: number; what: string }> = [];
  const log = (what: string) => {
    const t = Date.now() - t0;
    timeline.push({ t, what });
    process.stdout.write(`[${(t / 1000).toFixed(1).padStart(7)} s] ${what}\n`);
  };
  const load0 = loadavg();
  log(`chaos soak: lab ${LAB}, ${o.minutes} min, seed ${o.seed} (replay: npm run chaos -- --minutes ${o.minutes} --seed ${o.seed}); load ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const tmp = mkdtempSync(join(tmpdir(), 'meshd-chaos-'));
  let etcd: ChildProcess | undefined;
  let loadRun: Load | undefined;
  let faults: Faults | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    loadRun?.kill();
    await faults?.undo().catch(() => undefined);
    await teardown(LAB, etcd);
    rmSync(tmp, { recursive: true, force: true });
  })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: tearing down the lab`);
      void cleanup().then(() => process.exit(130));
    });
  }
  try {
    const { lab } = await setupCluster(LAB, tmp, log, (c) => (etcd = c));
    const all = lab.nodes.map((n) => n.name);
    faults = new Faults(lab, o.seed, log);
    const load = (loadRun = new Load({
      clientNs: lab.client.netns, nodes: lab.nodes.map((n) => ({ name: n.name, addr: n.underlay })), publishedPort: PORT,
      meshService: MESH_SVC, nameService: NAME_SVC, nameExpect: 'nginx', meshIntervalMs: 100, nameIntervalMs: 200, timeoutMs: 2000, log,
    }));

    // Task history (drains, stops) and where the client task runs, once a second.
    const tasks = new Map<string, TaskEvent>();
    const empty: EmptyPeriods = new Map();
    /** The nginx images answer with their hostname, the task id's first 12 characters. */
    const byShortId = new Map<string, string>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const v = await managerView(lab).catch((e: Error) => void log(`poll: manager view failed: ${e.message}`));
        const nodeState = await managerNodes(lab);
        const now = Date.now();
        for (const [svc, x] of Object.entries(v ?? {})) {
          if ('error' in x) continue;
          for (const t of x.tasks) {
            byShortId.set(t.id.slice(0, 12), t.name);
            const e = tasks.get(t.name) ?? { name: t.name, service: svc, drainAt: null, stoppedAt: null };
            if (t.desiredState !== 'running') e.drainAt ??= now;
            // confirmed stopped by its agent ('orphaned' is the manager's verdict on a lost node: it may still run)
            if (['shutdown', 'complete', 'failed', 'rejected'].includes(t.state)) e.stoppedAt ??= now;
            tasks.set(t.name, e);
          }
          const periods = empty.get(svc) ?? [];
          empty.set(svc, periods);
          const open = periods.at(-1)?.[1] === null;
          // a task on a node the manager holds as disconnected (dead in gossip, inside its down grace) serves nobody
          const running = x.tasks.filter((t) => t.state === 'running' && t.desiredState === 'running' && (!t.node || nodeState.get(t.node) !== 'disconnected')).length;
          if (running === 0 && !open) periods.push([now, null]);
          else if (running > 0 && open) periods.at(-1)![1] = now;
          if (svc === CLIENT_SVC) {
            const c = live(x.tasks).find((t) => t.state === 'running' && t.node);
            const ns = c ? `mlab-${LAB}-${c.node}-t-${c.id.slice(0, 12)}` : undefined;
            if (ns && existsSync(`/run/netns/${ns}`)) await load.follow(ns, c!.node!);
          }
        }
        await sleep(1000);
      }
    })();

    load.startMesh();
    await sleep(5000);
    log('request loops running; faults start');
    const done: Fault[] = [];
    const endAt = t0 + o.minutes * 60_000;
    let lastProblems: string[] = [];
    /**
     * Converged = every problem left was already there before the fault (`baseline`): a break that
     * persists (an invariant broken by an earlier fault) is reported once, at the end, and does not
     * hide how long the cluster took to get back to where it was. The final wait has no baseline.
     */
    const converge = async (f: Fault | undefined, baseline: string[]): Promise<number | null> => {
      const start = Date.now();
      const known = new Set(baseline);
      for (;;) {
        const s = await apiSnapshot(lab);
        lastProblems = problems(s, all);
        const fresh = lastProblems.filter((x) => !known.has(x));
        if (!fresh.length) return Date.now();
        if (Date.now() - start > CONVERGE_BOUND_MS) {
          log(`NOT CONVERGED ${CONVERGE_BOUND_MS / 1000} s after ${f ? `fault ${f.id} (${f.what})` : 'the last fault'}:\n  ${fresh.join('\n  ')}`);
          return null;
        }
        await sleep(1000);
      }
    };
    while (Date.now() < endAt) {
      const baseline = lastProblems;
      if (baseline.length) log(`carried into the next fault (already broken): ${baseline.length} problem(s)`);
      const f = await faults.run();
      f.carried = baseline.length;
      done.push(f);
      f.convergedAt = await converge(f, baseline);
      if (f.convergedAt) log(`fault ${f.id} (${f.kind}): converged ${f.convergedAt - f.end} ms after its end`);
      await sleep(faults.pause());
    }
    log(`faults stopped after ${done.length}; final convergence`);
    const finalConv = await converge(undefined, []);
    // A quiet period under load: nothing may fail now.
    await sleep(10_000);
    log('final invariant check through netctl on every node');
    const finalSnap = await cliSnapshot(lab);
    const finalProblems = problems(finalSnap, all);
    polling = false;
    await poll;
    await load.stop();
    const load1 = loadavg();
    log(`load ${load1.map((x) => x.toFixed(2)).join(' ')}`);

    for (const r of load.reqs) if (r.task.startsWith('id:')) r.task = byShortId.get(r.task.slice(3)) ?? r.task;
    const cls = classify(load.reqs, done, tasks, { mesh: MESH_SVC, name: NAME_SVC }, empty);
    const sum = summarize(cls, done);
    const notConverged = done.filter((f) => !f.convergedAt);
    const invariants = [
      { name: 'converged after every fault (bound 120 s; problems already there before the fault excluded)', ok: notConverged.length === 0, detail: notConverged.map((f) => `fault ${f.id} ${f.what}`) },
      { name: 'converged after the last fault', ok: finalConv !== null, detail: finalConv ? [] : lastProblems },
      { name: 'final: members, tables, FDB, LB, trace agree on every node; no update stuck; replicas running; one leader', ok: finalProblems.length === 0, detail: finalProblems },
      { name: 'no request failed after a drain (failedAfterDrain = 0)', ok: sum.failedAfterDrain === 0, detail: cls.filter((r) => r.klass === 'after-drain').slice(0, 50).map((r) => `${new Date(r.s).toISOString()} ${r.loop}→${r.node} ${r.kind}${r.stale ? ' stale' : ''} ${r.task} ${r.detail ?? ''}`) },
    ];
    const invariantsBroken = notConverged.length + (finalConv === null ? 1 : 0) + finalProblems.length + (sum.failedAfterDrain > 0 ? 1 : 0);
    const faultCount = Object.fromEntries(KINDS.map((k) => [k, done.filter((f) => f.kind === k).length]));
    const doc = {
      name: 'chaos',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), node: process.version },
      minutes: o.minutes,
      seed: o.seed,
      replay: `npm run chaos -- --minutes ${o.minutes} --seed ${o.seed}`,
      lab: { nodes: 5, managers: 3, store: 'etcd', services: { [MESH_SVC]: `3 replicas, published ${PORT} (routing mesh)`, [NAME_SVC]: `2 replicas of ${NAME_IMAGES.join(' / ')} on the Docker runtime, by name on overlay app`, [CLIENT_SVC]: '1 replica on app: the name loop runs in its namespace' } },
      load: { mesh: 'lab client → every node:8080 round robin, 10/s, 2 s timeout, one connection per request', name: 'inside the client task → http://api/ (embedded DNS + VIP; nginx on Docker), 5/s, 2 s timeout', skippedTicks: load.skipped },
      faults: faultCount,
      requests: {
        sent: sum.total.sent, failed: sum.total.failed, failedAfterDrain: sum.failedAfterDrain,
        expected: (sum.total.byClass['faulted-node'] ?? 0) + (sum.total.byClass.onset ?? 0) + (sum.total.byClass['no-backend'] ?? 0),
        unexpected: sum.unexpected.length,
        byKind: sum.total.byKind, byClass: sum.total.byClass, byLoop: sum.total.byLoop,
        outsideFaults: sum.quiet,
      },
      perKind: sum.perKind,
      invariantsBroken,
      invariants,
      unexpectedFailures: sum.unexpected.slice(0, 100).map((r) => ({ at: new Date(r.s).toISOString(), t: r.s - t0, loop: r.loop, node: r.node, kind: r.kind, class: r.klass, fault: r.fault, task: r.task, detail: r.detail })),
      loadAverage: { start: load0, end: load1 },
      faultList: done.map((f) => ({ id: f.id, kind: f.kind, what: f.what, nodes: f.nodes, t: f.start - t0, heldMs: f.end - f.start, detectMs: f.detectedAt ? f.detectedAt - f.start : null, electMs: f.electedAt ? f.electedAt - f.start : f.electedAt, convergeMs: f.convergedAt ? f.convergedAt - f.end : null, carriedProblems: f.carried ?? 0, error: f.error ?? null })),
      timeline,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(doc, null, 2) + '\n');
    printSummary(doc, sum);
    log(`wrote ${o.out}`);
    if (invariantsBroken || sum.unexpected.length) keepLogs(lab.nodes.map((n) => n.log), o.seed, log);
    if (invariantsBroken) {
      process.stdout.write(`\nINVARIANTS BROKEN: ${invariantsBroken} — seed ${o.seed} (replay: ${doc.replay})\n`);
      for (const i of invariants.filter((x) => !x.ok)) process.stdout.write(`  ✖ ${i.name}\n${i.detail.map((d) => `      ${d}`).join('\n')}\n`);
      process.stdout.write(`timeline:\n${timeline.map((e) => `  ${(e.t / 1000).toFixed(1).padStart(7)} s  ${e.what}`).join('\n')}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    process.stdout.write(`seed ${o.seed}; timeline:\n${timeline.map((x) => `  ${(x.t / 1000).toFixed(1).padStart(7)} s  ${x.what}`).join('\n')}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

/** Copies the agents' logs out of the lab's run directory (removed at teardown) for a failed run. */
function keepLogs(files: string[], seed: number, log: (m: string) => void): void {
  const dir = join(tmpdir(), `mchaos-logs-seed${seed}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  for (const f of files) if (existsSync(f)) copyFileSync(f, join(dir, basename(f)));
  log(`agent logs kept in ${dir}`);
}

function printSummary(doc: { faults: Record<string, number>; requests: { sent: number; failed: number; failedAfterDrain: number; unexpected: number }; invariantsBroken: number }, sum: ReturnType<typeof summarize>): void {
  const rows = Object.entries(sum.perKind).map(([kind, k]) => ({
    fault: kind, n: k.faults, sent: k.sent, failed: k.failed,
    timeout: k.byKind.timeout ?? 0, refused: k.byKind.refused ?? 0, reset: k.byKind.reset ?? 0, dns: k.byKind.dns ?? 0,
    wrong: (k.byKind.wrong ?? 0) + (k.byKind['wrong (stale task)'] ?? 0), other: (k.byKind.other ?? 0) + (k.byKind.unreachable ?? 0),
    expected: (k.byClass['faulted-node'] ?? 0) + (k.byClass.onset ?? 0) + (k.byClass['no-backend'] ?? 0), unexpected: (k.byClass['after-drain'] ?? 0) + (k.byClass.unexplained ?? 0),
    'conv p50 ms': k.convergeMs.p50, 'conv p99 ms': k.convergeMs.p99,
  }));
  rows.push({ fault: '(no fault)', n: 0, sent: sum.quiet.sent, failed: sum.quiet.failed, timeout: sum.quiet.byKind.timeout ?? 0, refused: sum.quiet.byKind.refused ?? 0, reset: sum.quiet.byKind.reset ?? 0, dns: sum.quiet.byKind.dns ?? 0, wrong: sum.quiet.byKind.wrong ?? 0, other: sum.quiet.byKind.other ?? 0, expected: 0, unexpected: sum.quiet.failed, 'conv p50 ms': null, 'conv p99 ms': null });
  console.table(rows);
  process.stdout.write(`faults ${JSON.stringify(doc.faults)}\nrequests sent ${doc.requests.sent}, failed ${doc.requests.failed} (unexpected ${doc.requests.unexpected}, after drain ${doc.requests.failedAfterDrain}); invariants broken ${doc.invariantsBroken}\n`);
}

process.exitCode = await main();
