/**
 * Issue 15's row "a standalone container on an attachable network" (`docker run --network app`)
 * end to end on a 2-node lab (`mrun`) with Debian's docker.io, through the real netctl and meshd
 * (images built locally, never pulled):
 * - `netctl run -d --name probe --network app` on n2: the manager records an attachment (address
 *   from app's IPAM); a service task on n1 reaches the container by its name;
 * - `netctl run --network app IMAGE wget http://web/` on n2 prints the service's answer and exits
 *   with the container's exit code (also a non-zero one); `--rm` leaves nothing behind;
 * - a network created without `--attachable` is refused with docker's wording, and nothing is
 *   recorded;
 * - an agent restart adopts the running container (still reachable by name);
 * - `container rm` frees the attachment in the manager's IPAM and removes the container.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { netctl } from '../../helpers/cli.js';
import { agentClient, waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';

const LAB = 'mrun';
const L = new DockerLab(LAB);
let lab: LabState;
const on = (node: string, ...args: string[]) => L.on(node, ...args);
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string }
interface AttachmentJ { id: string; name: string; node: string; addresses: Record<string, string> }
interface ContainerJ { id: string; name: string; status: string; ips: Record<string, string> }
const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 30_000 });
/** The manager's attachment records (through n1's agent, as any netctl call goes). */
const attachments = () => agentClient(lab, 'n1').call<AttachmentJ[]>('GET', '/v1/manager/attachments');
const containersOn = async (node: string): Promise<ContainerJ[]> => JSON.parse(ok(await on(node, 'container', 'ls', '-a', '--format', 'json'), 'container ls').stdout) as ContainerJ[];
/** `PREFIX NAME` of this lab's containers (the prefix names the node: mlab-mrun-n2-…). */
function labContainers(): string[] {
  const r = docker('ps', '-aq', '--filter', 'label=meshd.prefix');
  const ids = r.stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  return docker('inspect', '-f', '{{index .Config.Labels "meshd.prefix"}} {{.Name}}', ...ids).stdout.split('\n').filter((l) => l.startsWith(`mlab-${LAB}-`));
}
const HTTPD = (text: string) => `mkdir -p /tmp/w && echo ${text} > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w`;

before(async () => {
  lab = await L.up({ nodes: 2, networks: [] });
  ok(await m('network', 'create', '--attachable', '--subnet', '10.77.0.0/24', 'app'), 'network app');
  ok(await m('network', 'create', 'plain'), 'network plain');
  // `-p 80`: the VIP forwards only ports the service declares or the image exposes (busybox exposes none).
  ok(await m('service', 'create', '--name', 'web', '--network', 'app', '-p', '80', '--constraint', 'node.hostname==n1', '--timeout', '180s',
    IMAGES.busybox, 'sh', '-c', HTTPD('hello-web')), 'create web');
});
after(async () => {
  if (process.env.MRUN_KEEP_LAB) return;
  await L.down();
});

describe('netctl run: standalone containers on attachable networks (lab, docker runtime)', { timeout: 600_000 }, () => {
  let probeIp = '';

  test('run -d on n2: an attachment from app\'s IPAM, and the service task on n1 reaches the container by name', async () => {
    const id = ok(await on('n2', 'run', '-d', '--name', 'probe', '--network', 'app', IMAGES.busybox, 'sh', '-c', HTTPD('hello-probe')), 'run -d').stdout.trim();
    assert.match(id, /^[0-9a-f]{24}$/, 'prints the container id');
    const [c] = (await containersOn('n2')).filter((x) => x.name === 'probe');
    assert.equal(c?.status, 'running', JSON.stringify(c));
    probeIp = c!.ips.app!;
    assert.match(probeIp, /^10\.77\.0\.\d+$/, 'address on app');
    const recs = await attachments();
    assert.deepEqual(recs.map((a) => [a.id, a.name, a.node, a.addresses.app]), [[id, 'probe', 'n2', probeIp]], 'the manager records the attachment');
    const [t] = (JSON.parse(ok(await m('service', 'ps', 'web', '--format', 'json'), 'ps web').stdout) as TaskJ[]).filter((x) => x.state === 'running');
    assert.ok(t, 'web runs');
    await waitFor('web\'s task on n1 gets hello-probe from http://probe/', async () => {
      const r = await on('n1', 'exec', t.name, '--', 'busybox', 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', 'http://probe/');
      return r.stdout.trim() === 'hello-probe' ? r.stdout : false;
    }, 30_000, 500);
  });

  test('run (attached) on n2: wget of the service by name prints its answer; the exit code is the container\'s; --rm leaves nothing', async () => {
    const r = ok(await on('n2', 'run', '--rm', '--network', 'app', IMAGES.busybox, 'busybox', 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', 'http://web/'), 'run wget web');
    assert.equal(r.stdout.trim(), 'hello-web');
    // The netns runtime too (a host process; the node's busybox-static).
    const viaNetns = ok(await on('n2', 'run', '--rm', '--runtime', 'netns', '--network', 'app', 'host', 'busybox', 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', 'http://web/'), 'run --runtime netns');
    assert.equal(viaNetns.stdout.trim(), 'hello-web');
    const failed = await on('n2', 'run', '--name', 'three', '--network', 'app', IMAGES.busybox, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    assert.equal(failed.code, 3, `exit code propagated: ${failed.stderr}`);
    // Docker keeps stdout and stderr as two streams: their relative order is not a promise.
    assert.deepEqual(failed.stdout.split('\n').filter(Boolean).sort(), ['err', 'out'], 'stdout and stderr of the container');
    const after = await containersOn('n2');
    assert.deepEqual(after.map((x) => [x.name, x.status]).sort(), [['probe', 'running'], ['three', 'exited (3)']], '--rm removed the wget container; three stays exited');
    assert.deepEqual((await attachments()).map((a) => a.name).sort(), ['probe', 'three']);
    ok(await on('n2', 'container', 'rm', 'three'), 'rm three');
  });

  test('a network created without --attachable is refused with docker\'s wording; nothing is recorded', async () => {
    const r = await on('n2', 'run', '--name', 'nope', '--network', 'plain', IMAGES.busybox, 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Could not attach to network plain: network plain not manually attachable/);
    const ing = await on('n2', 'run', '--network', 'ingress', IMAGES.busybox, 'true');
    assert.match(ing.stderr, /network ingress not manually attachable/);
    assert.deepEqual((await attachments()).map((a) => a.name), ['probe']);
    const clash = await m('service', 'create', '--name', 'probe', '--network', 'app', '-d', 'whoami');
    assert.match(clash.stderr, /service name probe is already in use by a container/);
  });

  test('an agent restart (SIGKILL, start) adopts the running container: still running, still reachable by name', async () => {
    ok(await netctl(['lab', 'kill', '--name', LAB, 'n2']), 'kill n2');
    ok(await netctl(['lab', 'start', '--name', LAB, 'n2']), 'start n2');
    await waitFor('n2\'s agent lists probe as running again', async () => {
      const r = await on('n2', 'container', 'ls', '--format', 'json');
      return r.code === 0 && (JSON.parse(r.stdout) as ContainerJ[]).some((c) => c.name === 'probe' && c.status === 'running' && c.ips.app === probeIp) && r.stdout;
    }, 60_000, 500);
    const [t] = (JSON.parse(ok(await m('service', 'ps', 'web', '--format', 'json'), 'ps web').stdout) as TaskJ[]).filter((x) => x.state === 'running');
    await waitFor('web\'s task still gets hello-probe from http://probe/', async () => {
      const r = await on('n1', 'exec', t!.name, '--', 'busybox', 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', 'http://probe/');
      return r.stdout.trim() === 'hello-probe' ? r.stdout : false;
    }, 30_000, 500);
    assert.deepEqual((await attachments()).map((a) => a.name), ['probe'], 'the attachment stays');
  });

  test('container rm frees the attachment (IPAM) and removes the container', async () => {
    const running = await on('n2', 'container', 'rm', 'probe');
    assert.notEqual(running.code, 0, 'a running container needs -f');
    assert.match(running.stderr, /cannot remove a running container/);
    ok(await on('n2', 'container', 'rm', '-f', 'probe'), 'rm -f probe');
    assert.deepEqual(await attachments(), [], 'attachment freed');
    assert.deepEqual(await containersOn('n2'), []);
    assert.deepEqual(labContainers().filter((l) => !l.includes('-n1-')), [], 'no container of n2 left in the engine');
    // The freed address can be allocated again (requested explicitly through the dispatcher's IPAM
    // would need a node cert; a new container simply gets an address and the pool is not leaking).
    const id = ok(await on('n2', 'run', '-d', '--name', 'again', '--network', 'app', IMAGES.busybox, 'sleep', '600'), 'run again').stdout.trim();
    assert.equal((await attachments()).find((a) => a.id === id)?.name, 'again');
    ok(await on('n2', 'container', 'rm', '-f', 'again'), 'rm again');
    assert.deepEqual(await attachments(), []);
    // -d --rm: the agent removes it (and frees its attachment) as soon as it exits.
    ok(await on('n2', 'run', '-d', '--rm', '--name', 'once', '--network', 'app', IMAGES.busybox, 'true'), 'run -d --rm');
    await waitFor('the -d --rm container and its attachment are gone', async () => {
      const [atts, cs] = [await attachments(), await containersOn('n2')];
      return atts.length === 0 && cs.length === 0 && 'gone';
    }, 30_000, 250);
  });
});
