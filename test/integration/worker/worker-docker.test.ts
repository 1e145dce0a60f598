/**
 * Docker variant of the worker test: two whoami containers (runtime 'docker', image built
 * locally with `docker import`, never pulled) on two lab nodes reach each other over the
 * overlay; `netctl exec` runs in a container's namespace; unassigning removes the container.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import { buildBusyboxImage, ensureDockerd } from '../../helpers/docker.js';
import { buildSandboxImage } from '../../helpers/sandbox-image.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { restartAgentsInRootMounts } from './agents.js';

const LAB = 'itwd';
const CLI = join(dirname(fileURLToPath(import.meta.url)), 'netctl-worker.js');
const NET = { id: 'dapp0001', name: 'dapp', vni: 4201, subnet: '10.32.0.0/24', gateway: '10.32.0.1' };
const dweb = (i: number): AssignmentInput => ({
  task: { id: `dweb${i}aaaaaaa`, name: `dweb.${i}`, serviceId: 'sdweb', serviceName: 'dweb', image: 'whoami', runtime: 'docker' },
  desiredState: 'running',
  attachments: [{ network: NET, ip: `10.32.0.1${i}`, prefix: 24, mac: macFromIp(`10.32.0.1${i}`), vip: null }],
});

let lab: LabState | undefined;

async function removeContainers(): Promise<void> {
  for (const n of ['n1', 'n2']) {
    const ids = (await realExec.run('docker', ['ps', '-aq', '--filter', `label=meshd.prefix=mlab-${LAB}-${n}-`])).stdout.split('\n').filter(Boolean);
    if (ids.length) await realExec.run('docker', ['rm', '-f', ...ids]);
  }
}

after(async () => {
  await removeContainers().catch(() => undefined);
  await destroyLab(LAB);
});

describe('worker: docker tasks on two nodes', { timeout: 180_000 }, () => {
  before(async () => {
    if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
    buildBusyboxImage();
    buildSandboxImage(); // the agents' default sandbox image (a stand-in when setup did not make it)
    lab = await createLab({ name: LAB, nodes: 2 });
    await restartAgentsInRootMounts(lab);
  });

  test('containers reach each other; exec; unassign removes the container', async () => {
    const t0 = Date.now();
    await agentClient(lab!, 'n1').call('PUT', '/v1/assignments', [dweb(1)]);
    await agentClient(lab!, 'n2').call('PUT', '/v1/assignments', [dweb(2)]);
    const tasks = async (n: string): Promise<TaskView[]> => agentClient(lab!, n).call<TaskView[]>('GET', '/v1/tasks');
    for (const n of ['n1', 'n2']) {
      await waitFor(`docker task on ${n}`, async () => {
        const ts = await tasks(n);
        if (ts[0]?.state === 'failed') throw new Error(ts[0].error ?? 'failed');
        return ts[0]?.state === 'running';
      }, 60_000, 200);
    }
    console.log(`# docker tasks running ${Date.now() - t0} ms after PUT`);
    const t1 = (await tasks('n1'))[0]!;
    assert.equal(t1.runtime, 'docker');
    assert.equal(t1.container, `mlab-${LAB}-n1-c-dweb1aaaaaaa`);
    await waitFor('ping n1 → n2 container', async () => (await realExec.run('ping', ['-c1', '-W1', '10.32.0.12'], { netns: t1.netns! })).code === 0, 15_000, 200);
    const h = await realExec.run('curl', ['-s', '-m', '3', 'http://10.32.0.12/'], { netns: t1.netns! });
    assert.match(h.stdout, /task: dweb\.2/);
    assert.match(h.stdout, /node: n2/);
    // exec runs INSIDE the container (its image: busybox only), so the request uses busybox's nc.
    const ex = spawnSync(process.execPath, [CLI, '--lab', LAB, '--node', 'n2', 'exec', 'dweb.2', '--', '/bin/busybox', 'sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | /bin/busybox nc -w 3 10.32.0.11 80'], { encoding: 'utf8' });
    assert.equal(ex.status, 0, ex.stderr);
    assert.match(ex.stdout, /task: dweb\.1/);
    // `docker kill` of n2's application container: the agent learns it from the events stream (docker
    // tasks are not polled) and replaces it — a new container with the same name, running.
    const name = `mlab-${LAB}-n2-c-dweb2aaaaaaa`;
    const oldId = (await realExec.check('docker', ['inspect', '-f', '{{.Id}}', name])).trim();
    const k0 = Date.now();
    await realExec.check('docker', ['kill', name]);
    await waitFor('replacement container running', async () => {
      const r = await realExec.run('docker', ['inspect', '-f', '{{.Id}} {{.State.Running}}', name]);
      const [id, running] = r.stdout.trim().split(' ');
      return r.code === 0 && id !== oldId && running === 'true';
    }, 10_000, 50);
    console.log(`# docker kill → replacement container running: ${Date.now() - k0} ms`);
    await waitFor('replacement task running', async () => (await tasks('n2'))[0]?.state === 'running', 10_000, 50);
    await agentClient(lab!, 'n1').call('PUT', '/v1/assignments', []);
    await waitFor('container removed', async () => {
      const ids = (await realExec.run('docker', ['ps', '-aq', '--filter', `label=meshd.prefix=mlab-${LAB}-n1-`])).stdout.trim();
      return ids === '' && (await tasks('n1')).length === 0;
    }, 20_000, 200);
  });
});
