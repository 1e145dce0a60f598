/**
 * Issue 12, with a real engine per node where it matters (lab `mimg`, 3 nodes):
 *
 * - n3 runs its own Debian dockerd (test/helpers/node-engine.ts) that holds only the sandbox
 *   image; n1 and n2 use the machine's engine, which holds every image. `service create
 *   --replicas 3 meshd/nginx:1`: n3 rejects its task with `image meshd/nginx:1 not present on
 *   node n3` (shown by `service ps`), all 3 tasks run on n1/n2, and the scheduler remembers it
 *   (src/core/scheduler/image.ts): a scale to 6 sends nothing to n3.
 * - Teardown after an agent SIGKILL: with docker-runtime tasks running on both engines, every
 *   agent is SIGKILLed, then `netctl lab down`; no container (application or sandbox),
 *   namespace, link, mount or run dir of the lab is left, on either engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { netctl } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lab.js';
import { ensureDockerd, ensureImages, IMAGES } from '../../helpers/docker.js';
import { engineContainers, startNodeEngine, stopNodeEngine, type NodeEngine } from '../../helpers/node-engine.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import { IMAGE_MISSING_TTL_MS } from '../../../src/core/scheduler/image.js';

const LAB = 'mimg';
const PREFIX = `mlab-${LAB}-`;
const L = new DockerLab(LAB);
let lab: LabState;
let n3engine: NodeEngine;
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; error?: string | null; image: string; updatedAt: string }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
/** `PREFIX NAME` of the lab's containers on the machine's engine. */
function mainEngineLabContainers(): string[] {
  const r = spawnSync('docker', ['ps', '-a', '--filter', 'label=meshd.prefix', '--format', '{{.Label "meshd.prefix"}} {{.Names}}'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `docker ps: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith(PREFIX));
}
const labNamespaces = (): string[] => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(PREFIX));

before(async () => {
  assert.ok(await ensureDockerd(), 'Debian docker.io is installed and dockerd answers');
  await ensureImages();
  // n3's own engine: the sandbox image only — NOT the application image.
  n3engine = await startNodeEngine(LAB, 'n3', [IMAGES.sandbox], [IMAGES.nginx1]);
  process.stdout.write(`# n3's engine: dockerd pid ${n3engine.pid} on ${n3engine.socket}, data root ${n3engine.dataRoot}\n`);
  lab = await L.up({ nodes: 3, networks: ['front'], nodeConfig: { n3: { docker: { socketPath: n3engine.socket } } } });
});

after(async () => {
  // Also when a test failed: the lab (removes its containers from both engines), then n3's engine.
  await L.down(async () => {
    const problems = await stopNodeEngine(LAB, 'n3');
    if (problems.length) process.stdout.write(`# stopping n3's engine: ${problems.join('; ')}\n`);
  });
});

describe('a node whose engine lacks the image (n3 has its own dockerd)', { timeout: 600_000 }, () => {
  test('n3 rejects the task naming image and node; all 3 tasks run elsewhere; n3 is not retried', async () => {
    const t0 = Date.now();
    ok(await m('service', 'create', '--name', 'web', '--replicas', '3', '--network', 'front', '--timeout', '180s', IMAGES.nginx1), 'create web');
    process.stdout.write(`# web converged (3/3 running) ${Date.now() - t0} ms after create\n`);
    const tasks = await ps('web');
    const live = tasks.filter((t) => t.desiredState === 'running' && t.state === 'running');
    assert.equal(live.length, 3, JSON.stringify(tasks));
    assert.ok(live.every((t) => t.node === 'n1' || t.node === 'n2'), `running only where the image is: ${live.map((t) => `${t.name}@${t.node}`).join(' ')}`);
    const onN3 = tasks.filter((t) => t.node === 'n3');
    assert.equal(onN3.length, 1, `n3 was tried once: ${onN3.map((t) => `${t.name} ${t.state} ${t.error ?? ''}`).join('; ')}`);
    assert.equal(onN3[0]!.state, 'failed');
    assert.equal(onN3[0]!.error, `image ${IMAGES.nginx1} not present on node n3`);
    const table = ok(await m('service', 'ps', 'web'), 'ps web').stdout;
    assert.ok(table.includes(`image ${IMAGES.nginx1} not present on node n3`), table);
    process.stdout.write(`# service ps web:\n${table.replace(/^/gm, '#   ')}\n`);
    // The engine was only asked about the image: nothing was created on it.
    assert.deepEqual(engineContainers(n3engine), [], 'no container on n3');

    // The scheduler remembers the rejection: spread would put the new tasks on n3 (it runs none)
    // first, but the image filter keeps it out, so no new failure happens there.
    const sinceRejection = Date.now() - Date.parse(onN3[0]!.updatedAt);
    assert.ok(sinceRejection < IMAGE_MISSING_TTL_MS / 2, `the scale runs well inside the rejection's memory (${sinceRejection} ms of ${IMAGE_MISSING_TTL_MS} ms used)`);
    ok(await m('service', 'scale', 'web=6'), 'scale 6');
    const after6 = await ps('web');
    const live6 = after6.filter((t) => t.desiredState === 'running' && t.state === 'running');
    assert.equal(live6.length, 6, JSON.stringify(after6));
    assert.ok(live6.every((t) => t.node === 'n1' || t.node === 'n2'), live6.map((t) => `${t.name}@${t.node}`).join(' '));
    assert.equal(after6.filter((t) => t.node === 'n3').length, 1, 'no second try on n3 within the memory of its rejection');
    assert.deepEqual(engineContainers(n3engine), []);
  });

  test('agents SIGKILLed with docker tasks on both engines; lab down leaves no container, sandbox, namespace, link or mount', async () => {
    // A task n3 CAN run (its engine has the sandbox image, whose command sleeps), so n3's engine holds containers too.
    ok(await m('service', 'create', '--name', 'hold', '--constraint', 'node.hostname==n3', '--network', 'front', '--timeout', '120s', IMAGES.sandbox), 'create hold');
    const hold = (await ps('hold')).filter((t) => t.state === 'running');
    assert.deepEqual(hold.map((t) => t.node), ['n3']);
    const onN3 = engineContainers(n3engine);
    const onMain = mainEngineLabContainers();
    assert.equal(onN3.length, 2, `sandbox + application of hold on n3's engine: ${onN3.join('; ')}`);
    assert.ok(onMain.length >= 12, `6 web tasks × (sandbox + application) on the main engine: ${onMain.join('; ')}`);
    process.stdout.write(`# before: ${onMain.length} containers on the main engine, ${onN3.length} on n3's\n`);

    for (const n of lab.nodes) ok(await netctl(['lab', 'kill', n.name, '--name', LAB, '--signal', 'SIGKILL']), `kill ${n.name}`);
    await waitFor('every agent gone', () => lab.nodes.every((n) => {
      try {
        process.kill(n.pid!, 0);
        return false;
      } catch {
        return true;
      }
    }), 10_000, 100);
    assert.ok(mainEngineLabContainers().length >= 12, 'the containers outlive their agents (nothing stopped them)');

    const down = ok(await netctl(['lab', 'down', '--name', LAB], { timeoutMs: 120_000 }), 'lab down');
    process.stdout.write(`# ${down.stdout.trim()}\n`);
    assert.match(down.stdout, new RegExp(`, ${onMain.length + onN3.length} containers`));

    assert.deepEqual(mainEngineLabContainers(), [], 'no container of the lab on the main engine');
    assert.deepEqual(engineContainers(n3engine), [], "no container on n3's engine");
    assert.deepEqual(labNamespaces(), [], 'no namespace of the lab');
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);
    assert.deepEqual(links.filter((l) => /^vt-|^vx|mimg|^n[1-3]$|^client$/.test(l)), [], `no lab link in the root namespace (${links.join(' ')})`);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(PREFIX));
    assert.deepEqual(mounts, [], 'no namespace mount of the lab');
    assert.ok(!existsSync(`/run/meshd/${LAB}`), 'run dir removed');
    assert.deepEqual(existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((d) => d.startsWith(PREFIX)) : [], [], 'no /etc/netns dir of the lab');
  });
});
