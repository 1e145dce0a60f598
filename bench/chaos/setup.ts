/**
 * The soak's cluster, made the way a person would with netctl (as test/integration/manager/
 * ha-lab.test.ts does): a 5-node lab, etcd inside the lab's client namespace (so it is lab
 * traffic and dies with the lab), n1 initialises the cluster on etcd, n2 and n3 join as
 * managers, n4 and n5 as workers; an overlay network and three services:
 * - `whoami` ×3 published on 8080 through the routing mesh (reached from the lab client);
 * - `api` ×2 on the overlay, reached by name only: meshd/nginx on the Docker runtime (the image's
 *   EXPOSE 80 gives its VIP a frontend; nothing is published);
 * - `client` ×1 on the overlay: the task whose namespace the name loop runs in.
 * Tokens go through 0600 files, never argv.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../src/adapters/exec.js';
import { labDown, labUp, type LabState } from '../../src/lab/lab.js';
import { ensureDockerd, ensureImages } from '../../test/helpers/docker.js';

export const NETCTL = join(fileURLToPath(import.meta.url), '..', '..', '..', 'src', 'bin', 'netctl.js');
export const PORT = 8080;
export const MESH_SVC = 'whoami';
export const NAME_SVC = 'api';
export const CLIENT_SVC = 'client';
export const NETWORK = 'app';
/** The api service's images (made by native-scripts/images.sh; never pulled): updates alternate. */
export const NAME_IMAGES = ['meshd/nginx:1', 'meshd/nginx:2'] as const;

export interface CliResult { code: number; stdout: string; stderr: string }

/** netctl against one lab node, asynchronously (the driver's loops keep running meanwhile). */
export function netctl(lab: string, node: string, args: string[], timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NETCTL, '--lab', lab, '--node', node, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

export async function netctlOk(lab: string, node: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await netctl(lab, node, args, timeoutMs);
  if (r.code !== 0) throw new Error(`netctl --node ${node} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export interface Cluster {
  lab: LabState;
  etcd: ChildProcess;
  tmp: string;
}

async function startEtcd(lab: LabState, tmp: string, log: (m: string) => void): Promise<ChildProcess> {
  const ip = lab.client.underlay;
  const url = `http://${ip}:2379`;
  const etcd = spawn('nsenter', [`--net=/run/netns/${lab.client.netns}`, '--', 'etcd',
    '--name', 'mchaos', '--data-dir', join(tmp, 'etcd'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://${ip}:2380`, '--initial-advertise-peer-urls', `http://${ip}:2380`,
    '--initial-cluster', `mchaos=http://${ip}:2380`, '--initial-cluster-state', 'new',
    '--heartbeat-interval', '100', '--election-timeout', '1000', '--log-level', 'error',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  etcd.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (etcd.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
    // probed from inside the client namespace: the root namespace never talks to the lab
    const r = spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '2', `${url}/health`], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0 && r.stdout.includes('"health":"true"')) break;
    if (Date.now() > deadline) throw new Error(`etcd not healthy in 30 s (last: ${r.stdout} ${r.stderr}); etcd said: ${stderr}`);
    await new Promise((res) => setTimeout(res, 250));
  }
  log(`etcd up at ${url} in ${lab.client.netns}`);
  return etcd;
}

export async function setupCluster(name: string, tmp: string, log: (m: string) => void, onEtcd: (c: ChildProcess) => void): Promise<Cluster> {
  await labDown(realExec, name).catch((e: Error) => log(`removing a previous lab ${name}: ${e.message}`));
  if (!(await ensureDockerd())) throw new Error('the soak needs Docker (Debian\'s docker.io): dockerd is not installed');
  await ensureImages();
  const lab = await labUp(realExec, { name, nodes: 5, onProgress: log });
  const etcd = await startEtcd(lab, tmp, log);
  onEtcd(etcd);
  const url = `http://${lab.client.underlay}:2379`;
  await netctlOk(name, 'n1', ['cluster', 'init', '--store', 'etcd', '--etcd-endpoints', url, '--etcd-root', `/${name}/`]);
  for (const role of ['manager', 'worker'] as const) {
    const tok = await netctlOk(name, 'n1', ['cluster', 'join-token', role, '-q']);
    const file = join(tmp, `${role}.token`);
    writeFileSync(file, tok, { mode: 0o600 });
    for (const n of role === 'manager' ? ['n2', 'n3'] : ['n4', 'n5']) {
      await netctlOk(name, n, ['cluster', 'join', '--token-file', file, `${lab.nodes[0]!.underlay}:2377`]);
      log(`${n} joined as a ${role}`);
    }
  }
  await netctlOk(name, 'n1', ['network', 'create', '-d', 'overlay', '--subnet', '10.62.0.0/24', NETWORK]);
  const upd = ['--update-parallelism', '1', '--update-delay', '1s', '--update-failure-action', 'rollback', '--timeout', '120s'];
  await netctlOk(name, 'n2', ['service', 'create', '--name', MESH_SVC, '--replicas', '3', '-p', `${PORT}:80`, ...upd, 'whoami']);
  // api runs a real image on the Docker runtime (the `docker kill` fault's target; its updates switch
  // between two image tags); the other two stay on the netns runtime.
  await netctlOk(name, 'n2', ['service', 'create', '--name', NAME_SVC, '--replicas', '2', '--network', NETWORK, ...upd, NAME_IMAGES[0]]);
  await netctlOk(name, 'n2', ['service', 'create', '--name', CLIENT_SVC, '--replicas', '1', '--network', NETWORK, '--timeout', '120s', 'whoami']);
  log(`services ${MESH_SVC} ×3 (published ${PORT}), ${NAME_SVC} ×2 (by name on ${NETWORK}), ${CLIENT_SVC} ×1 converged`);
  return { lab, etcd, tmp };
}

/** Kills etcd (if ours and alive) and removes the lab; never throws. */
export async function teardown(name: string, etcd: ChildProcess | undefined): Promise<void> {
  if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
    const gone = new Promise((r) => etcd.once('exit', r));
    etcd.kill('SIGKILL');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
  }
  await labDown(realExec, name).catch((e: Error) => process.stderr.write(`lab down ${name}: ${e.message}\n`));
}
