/**
 * Issue 15's proof that compose files carry over: examples/every-key/stack.yml uses every Compose key meshd applies
 * (service, deploy, placement, resources, update/rollback/restart, healthcheck, volumes long and short, secrets and
 * configs in both forms, network aliases, ipam range/aux addresses, an internal network, labels, a netns service) and
 * deploys unchanged on a 2-node Docker lab (`mek`) through the real netctl: every service converges, web answers
 * through the routing mesh on both published ports from every node, its config file and the tool's secrets are
 * where the file says, addresses come from the ip_range, and `stack rm` removes services, networks, the secret and
 * the config. Cleanup also removes the named volume `ek_data` from the machine's engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { inNs, ROOT } from '../../helpers/cli.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import { waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';
import { IMAGES } from '../../helpers/docker.js';

const L = new DockerLab('mek');
const STACK = 'ek';
const FILE = join(ROOT, 'examples', 'every-key', 'stack.yml');
let lab: LabState;

interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; error?: string | null; addresses?: Record<string, string> }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await L.m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
const running = async (service: string) => (await ps(service)).filter((t) => t.desiredState === 'running' && t.state === 'running');
async function execIn(t: TaskJ, argv: string[]): Promise<string> {
  return ok(await L.on(t.node!, 'exec', t.name, '--', ...argv), `exec ${argv.join(' ')} in ${t.name}`).stdout;
}

before(async () => {
  lab = await L.up({ nodes: 2, networks: [] });
});
after(async () => {
  await L.down();
  const v = spawnSync('docker', ['volume', 'rm', '-f', `${STACK}_data`], { encoding: 'utf8' });
  if (v.status !== 0) console.error(`# docker volume rm ${STACK}_data: ${v.stderr.trim()}`);
});

describe('a compose file with every supported key (docker lab)', { timeout: 600_000 }, () => {
  test('deploys unchanged; every service converges; the mesh, configs, secrets and ip_range hold; stack rm removes it all', async () => {
    ok(await L.m('stack', 'deploy', '-c', FILE, STACK), 'stack deploy');
    const want: Record<string, number> = { [`${STACK}-web`]: 2, [`${STACK}-tool`]: 2, [`${STACK}-probe`]: 1 };
    for (const [svc, n] of Object.entries(want)) {
      await waitFor(`${n} running task(s) of ${svc}`, async () => (await running(svc)).length === n, 180_000, 500, async () => JSON.stringify(await ps(svc)));
    }
    for (const node of lab.nodes) {
      for (const port of [8091, 8092]) {
        await waitFor(`web on ${node.name}:${port}`, () => {
          const r = inNs(lab.client.netns, ['curl', '-s', '-m', '2', `http://${node.underlay}:${port}/`], 5000);
          return r.code === 0 && r.stdout.startsWith('nginx') ? r.stdout : undefined;
        }, 60_000, 500);
      }
    }
    const [web] = await running(`${STACK}-web`);
    assert.equal(await execIn(web!, ['cat', '/etc/site.conf']), 'server_name example;\n');
    const [tool] = await running(`${STACK}-tool`);
    assert.equal(await execIn(tool!, ['cat', '/run/secrets/token']), 'example-token-not-a-real-secret\n');
    assert.equal((await execIn(tool!, ['stat', '-c', '%a', '/run/secrets/token-copy'])).trim(), '440');
    // ip_range 10.77.0.128/25 on `front`: every task address there comes from it, never the aux address.
    const front = [...await running(`${STACK}-web`), ...await running(`${STACK}-tool`)]
      .map((t) => t.addresses?.[`${STACK}-front`]).filter((a): a is string => typeof a === 'string');
    assert.ok(front.length >= 4, `addresses on ${STACK}-front: ${JSON.stringify(front)}`);
    for (const a of front) {
      const last = Number(a.split('.')[3]);
      assert.ok(last >= 128 && a !== '10.77.0.200', `${a} is inside 10.77.0.128/25 and not the aux address`);
    }
    ok(await L.m('stack', 'rm', STACK), 'stack rm');
    await waitFor('no service left', async () => JSON.parse(ok(await L.m('service', 'ls', '--format', 'json'), 'service ls').stdout).length === 0, 60_000, 500);
    assert.equal(ok(await L.m('secret', 'ls', '-q'), 'secret ls').stdout.trim(), '');
    assert.equal(ok(await L.m('config', 'ls', '-q'), 'config ls').stdout.trim(), '');
    const nets = JSON.parse(ok(await L.m('network', 'ls', '--format', 'json'), 'network ls').stdout) as Array<{ name: string }>;
    assert.deepEqual(nets.map((n) => n.name).filter((n) => n.startsWith(`${STACK}-`)), []);
  });

  // Issue 15's macvlan row on the Docker runtime (the netns side is network-flags-lab's): the attach code is shared,
  // this proves a container's macvlan sub-interface of the node's underlay (parent eth0) carries traffic across nodes.
  test('macvlan on the docker runtime: containers on two nodes reach each other by address and by name', async () => {
    ok(await L.m('network', 'create', '-d', 'macvlan', '--subnet', '10.89.0.0/16', '--ip-range', '10.89.41.0/29', '--gateway', '10.89.41.1', '-o', 'parent=eth0', 'mvd'), 'create mvd');
    ok(await L.m('service', 'create', '--name', 'mvweb', '--mode', 'global', '--network', 'mvd', '--timeout', '180s', IMAGES.busybox,
      'sh', '-c', 'mkdir -p /tmp/w && hostname > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w'), 'create mvweb');
    const { value: tasks } = await waitFor('a running mvweb task on each node', async () => {
      const r = await running('mvweb');
      return r.length === 2 && new Set(r.map((t) => t.node)).size === 2 && r;
    }, 120_000, 500, async () => JSON.stringify(await ps('mvweb')));
    const [a, b] = tasks;
    const ipB = b!.addresses?.mvd;
    assert.match(ipB ?? '', /^10\.89\.41\.[0-7]$/, `b's address from the ip-range: ${JSON.stringify(b)}`);
    const get = (t: TaskJ, url: string) => L.on(t.node!, 'exec', t.name, '--', 'busybox', 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', url);
    const byIp = await get(a!, `http://${ipB}/`);
    assert.equal(byIp.code, 0, `wget from ${a!.name} (${a!.node}) to ${ipB} (${b!.node}): exit ${byIp.code} ${byIp.stderr}`);
    assert.equal(byIp.stdout.trim(), b!.id.slice(0, 12), 'the answer is b\'s hostname');
    await waitFor(`mvweb by name from ${b!.name}`, async () => {
      const r = await get(b!, 'http://mvweb/');
      return r.code === 0 && r.stdout.trim().length > 0 ? r.stdout : false;
    }, 20_000, 500);
    ok(await L.m('service', 'rm', 'mvweb'), 'rm mvweb');
    // The network is refused while the removed service's tasks are still stopping (MESHD_* "retry shortly").
    let last = '';
    await waitFor('network mvd removed once its tasks stopped', async () => {
      const r = await L.m('network', 'rm', 'mvd');
      last = r.stderr.trim();
      return r.code === 0;
    }, 60_000, 500, () => last);
  });
});
