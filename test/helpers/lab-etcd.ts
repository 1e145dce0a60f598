/**
 * etcd (Debian's etcd-server) for lab tests of managers on etcd: a single member inside the lab's
 * client namespace on its underlay address, so every node's manager reaches it over the lab's
 * switch as it would a real etcd. A lab down kills it with the namespace's processes; stopLabEtcd
 * in the test's `after` hook kills it first (before destroyLab) and waits for it to be gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { LabState } from '../../src/lab/lab.js';
import { inNs } from './cli.js';
import { waitFor } from './lab.js';

export interface LabEtcd {
  /** The client URL, http://CLIENT-UNDERLAY:2379 (`cluster init --etcd-endpoints`). */
  url: string;
  proc: ChildProcess;
}

/**
 * Starts etcd member `name` (data in `dataDir`, a test's scratch directory) and waits up to 30 s
 * until its /health says true, probed from inside the client namespace. Fast Raft timings
 * (100 ms heartbeat, 1 s election) keep the tests short. If etcd exits, the wait's timeout error
 * carries the last 2,000 characters of its stderr.
 */
export async function startLabEtcd(lab: LabState, name: string, dataDir: string): Promise<LabEtcd> {
  const ip = lab.client.underlay;
  const url = `http://${ip}:2379`;
  const proc = spawn('nsenter', [`--net=/run/netns/${lab.client.netns}`, '--', 'etcd',
    '--name', name, '--data-dir', dataDir, '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://${ip}:2380`, '--initial-advertise-peer-urls', `http://${ip}:2380`,
    '--initial-cluster', `${name}=http://${ip}:2380`, '--initial-cluster-state', 'new',
    '--heartbeat-interval', '100', '--election-timeout', '1000', '--log-level', 'error',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  const probe = `fetch(${JSON.stringify(`${url}/health`)}).then(r=>r.json()).then(j=>process.exit(j.health==='true'?0:1),()=>process.exit(1))`;
  await waitFor('etcd healthy in the lab', () => {
    if (proc.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
    return inNs(lab.client.netns, [process.execPath, '-e', probe], 5000).code === 0;
  }, 30_000, 200);
  return { url, proc };
}

/** Kills etcd (SIGKILL) if it still runs and waits for its exit; nothing when it never started. */
export async function stopLabEtcd(etcd: LabEtcd | undefined): Promise<void> {
  const p = etcd?.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}
