/**
 * Runtime benchmark (issue 12; `npm run bench -- runtime` → bench/results/runtime.json): time from
 * `service create` to every task serving THROUGH THE MESH, for N = 1, 10, 30 tasks on this machine,
 * in a 1-node lab (all N tasks on the node whose agent is measured):
 *
 *  - docker runtime: meshd/nginx:1 (the image users run), published on 8080; each task is a
 *    sandbox container + the application container (ARCHITECTURE §1), plumbed into the overlay;
 *  - netns runtime: a host process per task in its own namespace — busybox httpd from the host's
 *    filesystem (the netns runtime runs no image), same overlay, same published port;
 *  - the floor (peer): plain Docker through the Engine API (dockerode, as meshd uses it): N × create +
 *    start of the same nginx image in a loop (`docker run -d` in a loop), `NetworkMode: none`, then a
 *    readiness probe of every container on its own loopback (nsenter into its namespace, curl until
 *    it answers). No network is plumbed for the floor: that is the work meshd adds.
 *
 * "Serving through the mesh": a probe in the lab's client namespace (bench/lib/mesh-probe.ts, started
 * before the create) GETs node:8080 on a new connection each time until it has seen N distinct task
 * answers. The clock starts at the create call to the manager API (through the agent's socket, as
 * netctl does, without netctl's process start) and stops at the N-th distinct answer.
 * Ratio: floor / meshd (lower is better, so < 1 = meshd slower); `addedMsPerContainer` says what meshd
 * adds per container over plain Docker. Also the agent's RSS with 30 tasks (docker and netns).
 * Rounds (bench/lib/rounds.ts): per N, BENCH_ROUNDS rounds (default 3) of floor, docker, netns with the first
 * side rotating; each row's ratio is the median of the per-round ratios with its min–max, and a result whose
 * ratios spread more than 1.5× is written to runtime.rejected.json instead. One task of each side runs first and
 * is discarded (a fresh agent's first service pays one-off costs). The default sizes are 1 and 10
 * (3 rounds × 11 tasks × 3 sides: about the 41 tasks × 3 sides of the earlier single run at 1, 10, 30).
 * Env: BENCH_SIZES=1,10  BENCH_ROUNDS=3  BENCH_RUN_TIMEOUT_S=600. The load average and free memory are
 * recorded at start and end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { interleave } from './lib/rounds.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { ApiClient } from '../src/adapters/api/client.js';
import { realExec } from '../src/adapters/exec.js';
import { labDown, labUp, type LabState } from '../src/lab/lab.js';
import { ensureDockerd, ensureImages, IMAGES } from '../test/helpers/docker.js';
import { netctl } from '../test/helpers/cli.js';
import { pairedRow, row, snapshot, writeResults, type BenchRow } from './lib/results.js';

const START = snapshot();
const LAB = 'brt';
const SIZES = (process.env.BENCH_SIZES ?? '1,10').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN_TIMEOUT_MS = Number(process.env.BENCH_RUN_TIMEOUT_S ?? 600) * 1000;
const PORT = 8080;
const FLOOR_LABEL = 'meshd.bench';
const WWW = '/tmp/meshd-bench-www';
const PROBE = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'mesh-probe.js');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Run {
  ms: number | null;
  firstMs: number | null;
  note?: string;
}

/** A child's exit code (the probes of the floor run side by side: never spawnSync here). */
function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    const t = setTimeout(() => c.kill('SIGKILL'), RUN_TIMEOUT_MS);
    c.once('close', (code) => {
      clearTimeout(t);
      resolve(code ?? 128);
    });
  });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
const dockerdPid = (): number | null => Number(spawnSync('pidof', ['dockerd'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0]) || null;

/** Waits for the probe's N-th distinct answer; resolves with the ms since `t0` of the first and the last. */
function probe(lab: LabState, n: number): { started: Promise<void>; result: (t0: number) => Promise<Run>; kill: () => void } {
  const child = spawn('ip', ['netns', 'exec', lab.client.netns, process.execPath, PROBE, `http://${lab.nodes[0]!.underlay}:${PORT}/`, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const times: number[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = JSON.parse(buf.slice(0, i)) as { seen?: number };
      buf = buf.slice(i + 1);
      if (l.seen !== undefined) times.push(Date.now());
    }
  });
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return {
    // Node's start in the namespace is not part of the measurement: give it a moment before the create.
    started: sleep(800),
    result: async (t0) => {
      // The timeout is cleared once the probe is done: a pending 600 s timer per run kept the process alive
      // for up to 10 minutes after the results were written.
      let handle: NodeJS.Timeout | undefined;
      const timer = new Promise<'timeout'>((res) => (handle = setTimeout(() => res('timeout'), RUN_TIMEOUT_MS)));
      const r = await Promise.race([closed.then(() => 'done' as const), timer]);
      clearTimeout(handle);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        return { ms: null, firstMs: times[0] ? times[0] - t0 : null, note: `only ${times.length}/${n} tasks answered within ${RUN_TIMEOUT_MS / 1000} s` };
      }
      return { ms: times[n - 1]! - t0, firstMs: times[0]! - t0 };
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/** Removes the service and waits until the node's worker holds no task (containers and namespaces gone). */
async function removeService(agent: ApiClient, name: string): Promise<void> {
  await agent.call('DELETE', `/v1/manager/services/${name}`).catch(() => undefined);
  const deadline = Date.now() + 300_000;
  let left: unknown[] = [];
  while (Date.now() < deadline) {
    left = await agent.call<unknown[]>('GET', '/v1/tasks');
    if (left.length === 0) return;
    await sleep(500);
  }
  throw new Error(`service ${name}: ${left.length} task(s) still on the node after 300 s`);
}

async function meshdRun(lab: LabState, agent: ApiClient, kind: 'docker' | 'netns', n: number, rss: Record<string, number>): Promise<Run> {
  const name = `b${kind}${n}`;
  const spec = {
    name, env: {}, mode: { replicated: { replicas: n } }, endpointMode: 'vip', networks: [], constraints: [], updateConfig: {}, rollbackConfig: {},
    ports: [{ published: PORT, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster' }],
    ...(kind === 'docker'
      ? { image: IMAGES.nginx1 }
      : { image: 'busybox-httpd', runtime: 'netns', command: ['sh', '-c', `d=${WWW}/$MESHD_TASK_ID; mkdir -p $d && echo "httpd $MESHD_TASK_ID" > $d/index.html && exec busybox httpd -f -p 80 -h $d`] }),
  };
  const p = probe(lab, n);
  try {
    await p.started;
    const t0 = Date.now();
    await agent.call('POST', '/v1/manager/services', spec);
    const r = await p.result(t0);
    if (n === Math.max(...SIZES)) rss[kind] = rssKiB(lab.nodes[0]!.pid!);
    return r;
  } finally {
    p.kill();
    await removeService(agent, name);
    rmSync(WWW, { recursive: true, force: true });
  }
}

async function floorCleanup(d: Docker): Promise<void> {
  const list = await d.listContainers({ all: true, filters: { label: [`${FLOOR_LABEL}=runtime`] } });
  await Promise.all(list.map((c) => d.getContainer(c.Id).remove({ force: true })));
}

/** N × create + start of the same image (Engine API, in a loop), then every container probed on its loopback. */
async function floorRun(d: Docker, n: number, rss: Record<string, number>): Promise<Run> {
  await floorCleanup(d);
  try {
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = await d.createContainer({ Image: IMAGES.nginx1, name: `meshd-bench-floor-${i}`, Labels: { [FLOOR_LABEL]: 'runtime' }, HostConfig: { NetworkMode: 'none' } });
      await c.start();
      ids.push(c.id);
    }
    const done: number[] = [];
    await Promise.all(ids.map(async (id) => {
      const pid = (await d.getContainer(id).inspect()).State.Pid;
      const code = await run('nsenter', ['-t', String(pid), '-n', 'sh', '-c', 'i=0; until curl -sf -m 1 -o /dev/null http://127.0.0.1/; do i=$((i+1)); [ $i -gt 3000 ] && exit 1; sleep 0.02; done']);
      if (code !== 0) throw new Error(`floor container ${id.slice(0, 12)} never answered on its loopback`);
      done.push(Date.now() - t0);
    }));
    done.sort((a, b) => a - b);
    if (n === Math.max(...SIZES)) {
      const pid = dockerdPid();
      if (pid) rss.dockerdWithFloor = rssKiB(pid);
    }
    return { ms: done[n - 1]!, firstMs: done[0]! };
  } finally {
    await floorCleanup(d);
  }
}

async function main(): Promise<void> {
  if (!(await ensureDockerd())) throw new Error('Debian docker.io is not installed');
  await ensureImages();
  const d = new Docker({ socketPath: '/var/run/docker.sock' });
  await labDown(realExec, LAB).catch(() => undefined);
  const lab = await labUp(realExec, { name: LAB, nodes: 1 });
  const runs: Record<string, Record<number, Run[]>> = { floor: {}, docker: {}, netns: {} };
  const rss: Record<string, number> = {};
  try {
    const init = await netctl(['--lab', LAB, '--node', 'n1', 'cluster', 'init']);
    if (init.code !== 0) throw new Error(`cluster init: ${init.stderr}`);
    const agent = new ApiClient({ socketPath: lab.nodes[0]!.socket, timeoutMs: 60_000 });
    for (let i = 0; i < 100; i++) {
      const nodes = await agent.call<Array<{ runtimes?: string[] }>>('GET', '/v1/manager/nodes');
      if (nodes[0]?.runtimes?.includes('docker')) break;
      if (i === 99) throw new Error('the node never reported the docker runtime');
      await sleep(200);
    }
    rss.idle = rssKiB(lab.nodes[0]!.pid!);
    const dpid = dockerdPid();
    if (dpid) rss.dockerdIdle = rssKiB(dpid);
    // Warm-up, discarded: one task of each side before round 1. A fresh agent's first service pays one-off
    // costs (its first docker network and sandbox, image look-ups, the JIT of the create path) that are no
    // part of a create; this session, at load 15, N=1's first docker round took 95 s against 0.8–1.4 s after.
    const warm = { floor: await floorRun(d, 1, {}), docker: await meshdRun(lab, agent, 'docker', 1, {}), netns: await meshdRun(lab, agent, 'netns', 1, {}) };
    console.log(`warm-up (discarded): ${Object.entries(warm).map(([k, v]) => `${k} ${v.ms ?? 'timeout'} ms`).join(', ')}`);
    for (const n of SIZES) {
      const got = await interleave(ROUNDS, [
        { name: 'floor', run: () => floorRun(d, n, rss) },
        { name: 'docker', run: () => meshdRun(lab, agent, 'docker', n, rss) },
        { name: 'netns', run: () => meshdRun(lab, agent, 'netns', n, rss) },
      ], { onRound: (r, g) => console.log(`N=${n} round ${r + 1}: ${Object.entries(g).map(([k, v]) => `${k} ${v.ms ?? 'timeout'} ms`).join(', ')}  load ${loadavg()[0]!.toFixed(2)}`) });
      for (const k of ['floor', 'docker', 'netns']) runs[k]![n] = got[k]!;
    }
  } finally {
    await floorCleanup(d).catch(() => undefined);
    await labDown(realExec, LAB).catch((e) => console.error(`lab down: ${(e as Error).message}`));
    rmSync(WWW, { recursive: true, force: true });
  }

  const FLOOR = 'plain Docker: Engine API create+start loop, same image, loopback probe (no network plumbed)';
  const rows: BenchRow[] = [];
  const added: Record<number, number | null> = {};
  for (const n of SIZES) {
    const f = runs.floor![n]!.map((r) => r.ms);
    for (const kind of ['docker', 'netns'] as const) {
      const rs = runs[kind]![n]!;
      const what = kind === 'docker' ? 'meshd docker runtime (nginx)' : 'meshd netns runtime (busybox httpd)';
      // A round that timed out has no figure (the row is then rejected) and says so in its note.
      const notes = rs.flatMap((r) => (r.note ? [r.note] : []));
      rows.push(pairedRow(`create → all ${n} serving through the mesh, ${what}`, 'ms', rs.map((r) => r.ms), f, FLOOR, 'lower', notes.length ? { note: notes.join('; ') } : {}));
    }
    const dk = rows.at(-2)!.ours;
    const fm = rows.at(-2)!.peer;
    added[n] = Number.isFinite(dk) && fm != null ? Math.round((dk - fm) / n) : null;
  }
  if (rss.docker !== undefined) rows.push(row(`agent RSS with ${Math.max(...SIZES)} docker tasks`, 'KiB', rss.docker, null, 'none (no agent in plain Docker)', 'lower', `idle agent ${rss.idle} KiB; dockerd idle ${rss.dockerdIdle ?? '?'} KiB, with the floor's ${Math.max(...SIZES)} containers ${rss.dockerdWithFloor ?? '?'} KiB`));
  if (rss.netns !== undefined) rows.push(row(`agent RSS with ${Math.max(...SIZES)} netns tasks`, 'KiB', rss.netns, null, 'none', 'lower', `idle agent ${rss.idle} KiB`));
  writeResults('runtime', rows, {
    lab: '1 node (all tasks on the measured agent)',
    sizes: SIZES,
    runs,
    addedMsPerContainer: added,
    addedMsNote: 'median meshd docker time − median plain Docker time, per container',
    rounds: ROUNDS,
    warmUp: 'one task of each side (floor, docker, netns) before round 1, discarded',
    rssKiB: rss,
  }, { start: START });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
