/**
 * `lab down` removes a container whose `docker create` was still running inside dockerd when the
 * agent that sent it was killed (a clean clone once left `mlab-itwd-n2-s-…`, state Created).
 *
 * A stand-in agent (meshd-mimic-create.js, the lab's node n1 in a state file written here — no
 * namespaces, no real agent) sends a create of a 768 MB image, which a vfs dockerd copies for
 * a second or more; as soon as the request is in the socket, `lab down` runs. The create finishes
 * in dockerd after the agent's death (docker events say when); no container of the lab may be
 * left once dockerd has finished the request (its end of the connection is closed). Twice: the
 * stand-in as the state file's agent, and as an agent only found in the node's namespace.
 * Everything it makes (the container, the state dir, the namespace, the image) is removed in `after`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';
import { labDown } from '../../../src/lab/lab.js';
import { labRunDir } from '../../../src/lab/plan.js';
import { engineConnections, parseUnixSockets, procFdTarget, socketInodes, stillOpen } from '../../../src/lab/engine-requests.js';
import { ensureDockerd } from '../../helpers/docker.js';

/** TA_LAB: another lab name, so two checkouts can run this file side by side. */
const LAB = process.env.TA_LAB ?? 'tainflight';
const PREFIX = `mlab-${LAB}-n1-`;
const NAME = `${PREFIX}c-inflight1`;
const BULK = 'meshd-bulk:test';
const SOCK = '/var/run/docker.sock';
const MIMIC = join(dirname(fileURLToPath(import.meta.url)), 'meshd-mimic-create.js');

let mimic: ChildProcess | undefined;
const docker = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync('docker', args, { encoding: 'utf8', timeout: 60_000 });
/** Names of this lab's containers (the name filter is a substring match: check the prefix). */
const labContainers = (): string[] => docker(['ps', '-a', '--filter', `name=mlab-${LAB}-`, '--format', '{{.Names}}']).stdout.split('\n').filter((n) => n.startsWith(`mlab-${LAB}-`));
/** `ss -xnp` where the engine's end of PID's connections is: in PID's network namespace. */
const rowsOf = (pid: number) => parseUnixSockets(spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ss', '-xnpH'], { encoding: 'utf8' }).stdout);
const fdLinks = (pid: number): string[] => readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } });

/**
 * BULK_MB of random data (nothing for the copy to skip) in 4 MB files, made with `docker import`,
 * never pulled. Its size is the window: a vfs create copies it all (768 MB: 1–3 s here), and the
 * old teardown's single listing (~0.2–0.5 s after the kill) must come before the create ends for
 * this test to show the leak; 256 MB (0.2–0.8 s) let the listing win at times.
 */
const BULK_MB = 768;
function buildBulkImage(): void {
  if (docker(['image', 'inspect', BULK]).status === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-bulk-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'data'));
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    for (let i = 0; i < BULK_MB / 4; i++) writeFileSync(join(dir, 'data', `f${i}`), randomBytes(4 << 20));
    // streamed: the tar is never held in memory
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', 'tar -C "$1" -c . | docker import - "$2"', 'bulk', dir, BULK], { encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) throw new Error(`tar | docker import failed (${r.status}): ${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cleanup(): void {
  if (mimic?.pid) try { process.kill(mimic.pid, 'SIGKILL'); } catch { /* gone */ }
  const left = labContainers();
  if (left.length) docker(['rm', '-f', '-v', ...left]);
  rmSync(labRunDir(LAB), { recursive: true, force: true });
  spawnSync('ip', ['netns', 'del', `mlab-${LAB}-n1`], { stdio: 'ignore' }); // the only namespace this file makes
}

before(async () => {
  assert.ok(await ensureDockerd(), 'Debian docker.io is installed and dockerd answers');
  cleanup(); // a crashed earlier run
  buildBulkImage();
});
after(() => {
  cleanup();
  docker(['rmi', BULK]);
});

/**
 * One case: the stand-in sends its create; `lab down` runs at once. `recorded`: the stand-in is
 * the state file's agent for n1; otherwise it runs in n1's namespace and the state file names a
 * dead pid — an agent restarted outside `lab up` (the worker tests' restartAgentsInRootMounts),
 * which is how the clean clone's itwd agent was still alive when the old teardown listed.
 */
async function inflightCase(recorded: boolean): Promise<void> {
  const tStart = Date.now();
  const ns = `mlab-${LAB}-n1`;
  if (!recorded) assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0, `ip netns add ${ns}`);
  const argv = [process.execPath, MIMIC, SOCK, NAME, PREFIX, BULK];
  mimic = recorded ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn('nsenter', [`--net=/run/netns/${ns}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = mimic.pid!;
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`stand-in agent did not send its create within 10 s (stdout: ${out})`)), 10_000);
    mimic!.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('sent')) { clearTimeout(t); resolve(); } });
    mimic!.once('exit', (code) => { clearTimeout(t); reject(new Error(`stand-in agent exited ${code}: ${out}`)); });
  });
  // The engine's end of the stand-in's connection: closed once dockerd has finished the create.
  const conn = engineConnections(rowsOf(pid), [SOCK], socketInodes(fdLinks(pid)));
  assert.equal(conn.sockets.length, 1, `one accepted connection of the stand-in to ${SOCK} (${JSON.stringify(conn)})`);
  const atStart = labContainers();
  assert.deepEqual(atStart, [], 'the create is still running in dockerd when lab down starts');
  // The node's agent, as `lab up` would have recorded it (a pid that is not running when not `recorded`).
  mkdirSync(labRunDir(LAB), { recursive: true });
  const n1 = { name: 'n1', netns: ns, underlay: '10.0.0.1', socket: join(labRunDir(LAB), 'n1.sock'), pid: recorded ? pid : 0x3ffffff, log: '', config: '', seeds: [] };
  writeFileSync(join(labRunDir(LAB), 'lab.json'), JSON.stringify({ name: LAB, createdAt: new Date().toISOString(), switchNs: `mlab-${LAB}-sw`, client: { netns: `mlab-${LAB}-client`, underlay: '10.0.0.254' }, nodes: [n1], gossipPreset: 'lan', keyFile: null }));
  const tDown = Date.now();
  const r = await labDown(realExec, LAB);
  const downMs = Date.now() - tDown;
  process.stdout.write(`# lab down (${recorded ? 'agent in the state file' : 'agent only in the node namespace'}): ${downMs} ms, ${JSON.stringify(r)}\n`);
  assert.equal(r.processes, 1, 'the stand-in agent was killed');
  // What the assertion below waits on: dockerd finishing the create (not a sleep).
  const t1 = Date.now();
  while (stillOpen(conn.sockets, procFdTarget).length) {
    assert.ok(Date.now() - t1 < 120_000, `dockerd still serving the dead agent's create ${Date.now() - t1} ms after lab down`);
    await new Promise((res) => setTimeout(res, 50));
  }
  process.stdout.write(`# dockerd finished the create ${Date.now() - t1} ms after lab down returned\n`);
  const ev = docker(['events', '--since', (tStart / 1000).toFixed(3), '--until', (Date.now() / 1000).toFixed(3), '--filter', `container=${NAME}`, '--format', '{{.Action}} {{.TimeNano}}']).stdout.trim().split('\n').filter(Boolean);
  const created = ev.map((l) => l.split(' ')).find(([a]) => a === 'create');
  process.stdout.write(`# events of ${NAME}: ${ev.map((l) => { const [a, t] = l.split(' '); return `${a} +${Math.round(Number(t) / 1e6) - tDown} ms`; }).join(', ')} (relative to lab down's start)\n`);
  assert.ok(created, 'dockerd did create the container (the request outlived its client)');
  assert.ok(Number(created[1]) / 1e6 > tDown, 'the create finished after lab down started (it was in flight when the agent was killed)');
  assert.deepEqual(labContainers(), [], 'no container of the lab is left');
  assert.equal(spawnSync('ip', ['netns', 'pids', ns]).status === 0, false, `lab down removed ${ns}`);
}

test('lab down leaves no container whose create was in flight when the agent died', { timeout: 240_000 }, async () => {
  await inflightCase(true);
});

test('… also when the agent is not the state file\'s (restarted outside lab up) but runs in the node namespace', { timeout: 240_000 }, async () => {
  cleanup();
  await inflightCase(false);
});
