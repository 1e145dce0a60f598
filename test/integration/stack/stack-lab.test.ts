/**
 * `netctl stack` end to end on a 3-node lab (`itstk`), driving the real binary: a Compose
 * file with `web` (whoami ×2, published 8080:80) and `client` (an argv task — the netns
 * runtime runs any program — looping `curl http://web/` and writing the last answer to a
 * file). Asserts the client reaches web by its short name (the network alias docker stack
 * deploy also adds; `tasks.web` too) and by its full name `itstk-web`, web answers through the routing
 * mesh from the lab client on every node, `stack ls/services/ps` list it, a redeploy
 * updates only the changed service, `stack rm` removes services and networks, and invalid
 * Compose files exit non-zero with a one-line message naming the key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, netctl, ROOT } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'itstk';
const STACK = 'itstk';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-itstk-'));
const OUT = join(tmp, 'client.out');
/** Where vagrant/example-stack.yml's client writes (it runs on the netns runtime, from the host's filesystem). */
const SHOP_LOG = '/tmp/shop-client.log';
let lab: LabState;
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args], { timeoutMs: 200_000 });

function compose(webReplicas: number): string {
  return `version: "3.8"
services:
  web:
    image: whoami
    ports:
      - "8080:80"
    networks: [app]
    deploy:
      replicas: ${webReplicas}
      update_config:
        parallelism: 2
        delay: 0s
  client:
    image: busybox
    x-meshd-runtime: netns
    command: ["sh", "-c", 'while true; do curl -s -m 2 http://web/ > "$$OUT.tmp" && mv "$$OUT.tmp" "$$OUT"; sleep 1; done']
    environment:
      OUT: ${OUT}
    networks:
      - app
networks:
  app:
    driver: overlay
`;
}

interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string }

before(async () => {
  lab = await createLab({ name: LAB, nodes: 3 });
  await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, timeoutMs: 200_000 });
});
after(async () => {
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('netctl stack on a 3-node lab', { timeout: 300_000 }, () => {
  test('invalid Compose files: non-zero exit, one line naming the key, nothing created', async () => {
    const rows: Array<[string, string, RegExp]> = [
      ['unknown.yml', 'services:\n  web:\n    image: whoami\n    deploy:\n      replicaz: 2\n', /unknown\.yml: services\.web\.deploy\.replicaz: unknown key/],
      ['type.yml', 'services:\n  web:\n    image: whoami\n    deploy:\n      replicas: many\n', /type\.yml: services\.web\.deploy\.replicas: expected a whole number/],
      ['port.yml', 'services:\n  web:\n    image: whoami\n    ports: ["80:abc"]\n', /port\.yml: services\.web\.ports\[0\]: "80:abc" is not a port mapping/],
    ];
    for (const [name, text, re] of rows) {
      const f = join(tmp, name);
      writeFileSync(f, text);
      const r = await on('n1', 'stack', 'deploy', '-c', f, STACK);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const ls = await on('n1', 'stack', 'ls', '--format', 'json');
    assert.deepEqual(JSON.parse(ls.stdout), []);
  });

  test('deploy: networks and services created, converged, listed', async () => {
    const f = join(tmp, 'compose.yml');
    writeFileSync(f, compose(2));
    const r = await on('n1', 'stack', 'deploy', '-c', f, STACK);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`Creating network ${STACK}-app`, `Creating service ${STACK}-web`, `Creating service ${STACK}-client`]);
    assert.match(r.stderr, /verify: stack itstk converged/);

    const ls = await on('n1', 'stack', 'ls');
    assert.match(ls.stdout, /^NAME\s+SERVICES\nitstk\s+2\n$/);
    const svcs = await on('n1', 'stack', 'services', STACK);
    assert.match(svcs.stdout, /itstk-web\s+replicated\s+2\/2\s+whoami\s+\*:8080->80\/tcp/);
    assert.match(svcs.stdout, /itstk-client\s+replicated\s+1\/1/);
    const ps = await on('n1', 'stack', 'ps', STACK, '--format', 'json');
    assert.equal(ps.code, 0, ps.stderr);
    const tasks = JSON.parse(ps.stdout) as TaskJ[];
    assert.equal(tasks.filter((t) => t.state === 'running').length, 3);
    const table = await on('n1', 'stack', 'ps', STACK);
    assert.match(table.stdout, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\n/);
    assert.match(table.stdout, /itstk-web\.1\s+whoami\s+n\d\s+running\s+running/);
  });

  test('the client service reaches web by its short name and its full name (DNS → VIP → a web task)', async () => {
    // The client's own loop uses http://web/ (the alias).
    const { value } = await waitFor('client output', () => (existsSync(OUT) ? readFileSync(OUT, 'utf8') : undefined), 60_000, 500);
    assert.match(value, /task: itstk-web\.\d/);
    // And from inside a client task with netctl exec, on the node that runs it: the full name too.
    const tasks = JSON.parse((await on('n1', 'stack', 'ps', STACK, '--format', 'json')).stdout) as TaskJ[];
    const c = tasks.find((t) => t.name.startsWith(`${STACK}-client.`) && t.state === 'running')!;
    for (const host of ['web', `${STACK}-web`]) {
      const r = await on(c.node!, 'exec', c.name, '--', 'curl', '-s', '-m', '3', `http://${host}/`);
      assert.equal(r.code, 0, `${host}: ${r.stderr}`);
      assert.match(r.stdout, /task: itstk-web\.\d/, host);
    }
    // tasks.<alias> lists every web task, like tasks.<service>.
    const webIps = tasks.filter((t) => t.name.startsWith(`${STACK}-web.`) && t.state === 'running').length;
    for (const name of ['tasks.web', `tasks.${STACK}-web`]) {
      const d = await on(c.node!, 'exec', c.name, '--', 'dig', '+short', '+time=2', '+tries=2', '@127.0.0.11', name);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(d.stdout.trim().split('\n').filter(Boolean).length, webIps, `${name}: ${d.stdout}`);
    }
  });

  test('web answers through the routing mesh on every node', async () => {
    for (const n of lab.nodes) {
      const { value } = await waitFor(`mesh on ${n.name}`, () => {
        const r = inNs(lab.client.netns, ['curl', '-s', '-m', '3', `http://${n.underlay}:8080/`]);
        return r.code === 0 && /task: itstk-web\./.test(r.stdout) ? r.stdout : undefined;
      }, 30_000, 500);
      assert.match(value, /task: itstk-web\.\d/);
    }
  });

  test('redeploy: only the changed service is updated', async () => {
    const f = join(tmp, 'compose.yml');
    writeFileSync(f, compose(3));
    const r = await on('n1', 'stack', 'deploy', '-c', f, STACK);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`Updating service ${STACK}-web`, `Service ${STACK}-client is up to date`]);
    const svcs = await on('n1', 'stack', 'services', STACK, '--format', 'json');
    const web = (JSON.parse(svcs.stdout) as Array<{ name: string; replicas: { running: number; desired: number } }>).find((s) => s.name === `${STACK}-web`)!;
    assert.deepEqual(web.replicas, { running: 3, desired: 3 });
  });

  test('rm: services then networks; nothing left; a second rm is not found', async () => {
    const r = await on('n1', 'stack', 'rm', STACK);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), [`Removing network ${STACK}-app`, `Removing service ${STACK}-client`, `Removing service ${STACK}-web`]);
    const ls = await on('n1', 'service', 'ls', '--format', 'json');
    assert.deepEqual(JSON.parse(ls.stdout), []);
    const nets = await on('n1', 'network', 'ls', '--format', 'json');
    assert.deepEqual((JSON.parse(nets.stdout) as Array<{ name: string }>).map((n) => n.name).filter((n) => n.startsWith(`${STACK}-`)), []);
    const again = await on('n1', 'stack', 'rm', STACK);
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, /^netctl: nothing found in stack: itstk\n$/);
  });

  // Issue 15: the example users copy deploys unchanged (netns whoami + a netns client that logs to the host's /tmp).
  test('vagrant/example-stack.yml deploys unchanged: shop-web answers through the mesh, shop-client reaches it by name', async () => {
    rmSync(SHOP_LOG, { force: true });
    try {
      const r = await on('n1', 'stack', 'deploy', '-c', join(ROOT, 'vagrant', 'example-stack.yml'), 'shop');
      assert.equal(r.code, 0, r.stderr);
      for (const n of lab.nodes) {
        await waitFor(`shop-web through the mesh on ${n.name}`, () => {
          const x = inNs(lab.client.netns, ['curl', '-s', '-m', '3', `http://${n.underlay}:8080/`]);
          return x.code === 0 && /task: shop-web\.\d/.test(x.stdout) ? x.stdout : undefined;
        }, 60_000, 500);
      }
      await waitFor('shop-client logged an answer of shop-web', () => (existsSync(SHOP_LOG) && /task: shop-web\.\d/.test(readFileSync(SHOP_LOG, 'utf8')) ? true : undefined), 60_000, 500,
        () => `${SHOP_LOG}: ${existsSync(SHOP_LOG) ? JSON.stringify(readFileSync(SHOP_LOG, 'utf8').slice(-300)) : 'absent'}`);
      const rm = await on('n1', 'stack', 'rm', 'shop');
      assert.equal(rm.code, 0, rm.stderr);
    } finally {
      rmSync(SHOP_LOG, { force: true });
    }
  });
});
