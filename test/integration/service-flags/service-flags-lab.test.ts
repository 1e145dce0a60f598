/**
 * Issue 15's service-spec rows end to end on a 2-node lab (`mf15`) with Debian's docker.io,
 * through the real netctl and meshd (images built locally, never pulled):
 * - one busybox service with `--mount` bind (read-only) / volume / tmpfs, `--container-label`,
 *   `--label`, `--hostname '{{.Service.Name}}-{{.Task.Slot}}'`, `--workdir`, `--user`,
 *   `--read-only`, `--dns-option`, `--init`: each observed inside the container (or with
 *   `docker inspect` on the engine), the service label in `service inspect --format`;
 * - the same kind of setting on a netns service is refused with MESHD_UNSUPPORTED naming netns;
 * - `-p 8000` (target only): `service inspect` reports a port in 30000–32767 that answers on
 *   every node through the mesh, and keeps it across an update that replaces the task;
 * - `--restart-condition none`: a killed task stays dead (no replacement);
 * - `--replicas-max-per-node 1` with 3 replicas on 2 nodes: one task pending with docker's message;
 * - `stack deploy` of a compose file with a named volume (`<stack>_<key>`), a tmpfs, a hostname
 *   template, working_dir and deploy.labels: applied in the container; a file with `depends_on` is
 *   refused naming the key, and nothing of it is deployed (secrets: test/integration/secrets).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { inNs, type CliResult } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';

const LAB = 'mf15';
const VOLUME = 'mf15-data';
/** The named volume the compose case's stack gets (`<stack>_<key>`, docker's naming). */
const STACK_VOLUME = 'cf_data';
const L = new DockerLab(LAB);
const tmp = L.tmp;
let lab: LabState;
const on = (node: string, ...args: string[]) => L.on(node, ...args);
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; slot?: number; node: string | null; desiredState: string; state: string; error?: string | null; message?: string | null }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
const running = async (service: string) => (await ps(service)).filter((t) => t.desiredState === 'running' && t.state === 'running');
/** `exec` in the running task of `service`; returns stdout (asserting exit 0 unless `allowFail`). */
async function execIn(service: string, argv: string[], allowFail = false): Promise<CliResult> {
  const [t] = await running(service);
  assert.ok(t, `a running task of ${service}: ${JSON.stringify(await ps(service))}`);
  const r = await on(t.node!, 'exec', t.name, '--', ...argv);
  if (!allowFail) ok(r, `exec ${argv.join(' ')} in ${t.name}`);
  return r;
}
const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 30_000 });
/** The application container of a task (the runtime labels it meshd.task=<id>, role app). */
function appContainer(taskId: string): string {
  const r = docker('ps', '-aq', '--filter', `label=meshd.task=${taskId}`, '--filter', 'label=meshd.role=app');
  const id = r.stdout.trim().split('\n')[0];
  assert.ok(id, `app container of task ${taskId}: ${r.stderr}`);
  return id;
}
function get(url: string): string | null {
  const r = inNs(lab.client.netns, ['curl', '-s', '-m', '2', url], 5000);
  return r.code === 0 ? r.stdout.trim() : null;
}
const publishedOf = async (service: string): Promise<Array<{ target: number; published: number }>> =>
  JSON.parse(ok(await m('service', 'inspect', service, '--format', '{{json .ports}}'), `inspect ${service}`).stdout) as Array<{ target: number; published: number }>;

before(async () => {
  lab = await L.up({ nodes: 2, networks: ['app'] });
});
after(async () => {
  if (process.env.MF15_KEEP_LAB) return;
  await L.down();
  docker('volume', 'rm', '-f', VOLUME, STACK_VOLUME);
});

describe('service spec flags (lab, docker runtime)', { timeout: 600_000 }, () => {
  test('mounts, labels, hostname template, workdir, user, read-only, dns option, init: seen inside the container and by the engine', async () => {
    const dir = join(tmp, 'bind');
    mkdirSync(dir);
    writeFileSync(join(dir, 'hello'), 'hello-bind\n');
    chmodSync(tmp, 0o755);
    ok(await m('service', 'create', '--name', 'box', '--network', 'app', '--timeout', '180s',
      '--mount', `type=bind,source=${dir},target=/b,readonly`, '--mount', `type=volume,source=${VOLUME},target=/v`, '--mount', 'type=tmpfs,target=/t',
      '--label', 'svc.owner=shop', '--container-label', 'com.example.tier=front', '--hostname', '{{.Service.Name}}-{{.Task.Slot}}',
      '--workdir', '/tmp', '--user', '1000:1000', '--read-only', '--dns-option', 'ndots:2', '--init',
      IMAGES.busybox, 'sleep', '3600'), 'create box');
    assert.equal((await execIn('box', ['cat', '/b/hello'])).stdout, 'hello-bind\n', 'bind mount readable');
    const mounts = (await execIn('box', ['cat', '/proc/mounts'])).stdout;
    const line = (target: string) => mounts.split('\n').find((l) => l.split(' ')[1] === target) ?? '';
    assert.match(line('/b'), /\sro[,\s]/, `/b read-only:\n${mounts}`);
    assert.match(line('/t'), /^tmpfs /, `/t is a tmpfs:\n${mounts}`);
    assert.ok(line('/v'), `/v is mounted:\n${mounts}`);
    assert.match(line('/'), /\sro[,\s]/, `root filesystem read-only:\n${mounts}`);
    assert.equal((await execIn('box', ['hostname'])).stdout.trim(), 'box-1');
    assert.equal((await execIn('box', ['pwd'])).stdout.trim(), '/tmp');
    assert.equal((await execIn('box', ['id', '-u'])).stdout.trim(), '1000');
    const ro = await execIn('box', ['touch', '/etc/x'], true);
    assert.notEqual(ro.code, 0, 'writing the root filesystem fails');
    assert.match(ro.stderr + ro.stdout, /Read-only file system/);
    ok(await execIn('box', ['sh', '-c', 'echo w > /t/w && cat /t/w']), 'tmpfs writable');
    assert.match((await execIn('box', ['cat', '/etc/resolv.conf'])).stdout, /options ndots:2/);
    assert.match((await execIn('box', ['cat', '/proc/1/comm'])).stdout.trim(), /^(docker-init|tini)/, 'PID 1 is the init');
    const [t] = await running('box');
    const ins = JSON.parse(docker('inspect', appContainer(t!.id)).stdout) as Array<{ Config: { Labels: Record<string, string>; User: string; WorkingDir: string }; HostConfig: { ReadonlyRootfs: boolean; Init: boolean; Mounts: Array<{ Type: string; Target: string }> } }>;
    assert.equal(ins[0]!.Config.Labels['com.example.tier'], 'front');
    assert.deepEqual([ins[0]!.Config.User, ins[0]!.Config.WorkingDir, ins[0]!.HostConfig.ReadonlyRootfs, ins[0]!.HostConfig.Init], ['1000:1000', '/tmp', true, true]);
    assert.deepEqual(ins[0]!.HostConfig.Mounts.map((x) => `${x.Type}:${x.Target}`), ['bind:/b', 'volume:/v', 'tmpfs:/t']);
    assert.equal(ok(await m('service', 'inspect', 'box', '--format', '{{json .spec.labels}}'), 'inspect').stdout.trim(), '{"svc.owner":"shop"}');
  });

  test('the netns runtime refuses what it cannot honour, naming itself', async () => {
    // bind and tmpfs are honoured on netns now (its own mount namespace); a named volume is not.
    const r = await m('service', 'create', '--name', 'nope', '--mount', 'type=volume,source=v,target=/t', '-d', 'whoami');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /MESHD_UNSUPPORTED|not supported by the netns runtime/);
    assert.match(r.stderr, /--mount.*netns runtime/);
  });

  test('-p 8000: a port from 30000–32767 that service inspect reports answers on every node, and stays across an update', async () => {
    const sh = 'mkdir -p /tmp/w && echo "pong $(hostname)" > /tmp/w/index.html && exec httpd -f -p 8000 -h /tmp/w';
    ok(await m('service', 'create', '--name', 'web', '--network', 'app', '-p', '8000', '--timeout', '180s', IMAGES.busybox, 'sh', '-c', sh), 'create web');
    const [port] = await publishedOf('web');
    assert.equal(port?.target, 8000);
    assert.ok(port!.published >= 30000 && port!.published <= 32767, `published ${port?.published}`);
    process.stdout.write(`# web: 8000 published on ${port!.published}\n`);
    const answers = async (what: string) => {
      for (const n of lab.nodes) {
        await waitFor(`${what}: ${n.name}:${port!.published} answers pong`, () => get(`http://${n.underlay}:${port!.published}/`)?.startsWith('pong') ?? false, 30_000, 250);
      }
    };
    await answers('created');
    ok(await m('service', 'update', '--env-add', 'X=1', '--timeout', '180s', 'web'), 'update web');
    assert.deepEqual(await publishedOf('web'), [port], 'the assigned port is kept across the update');
    await answers('updated');
  });

  test('--restart-condition none: a killed task stays dead', async () => {
    ok(await m('service', 'create', '--name', 'once', '--network', 'app', '--restart-condition', 'none', '--restart-delay', '200ms', '--timeout', '180s', IMAGES.busybox, 'sleep', '3600'), 'create once');
    const [t] = await running('once');
    assert.ok(t);
    const k = docker('kill', appContainer(t.id));
    assert.equal(k.status, 0, `docker kill: ${k.stderr}`);
    await waitFor('the killed task is failed', async () => {
      const l = await ps('once');
      return l.find((x) => x.id === t.id && x.state === 'failed') && l;
    }, 30_000, 250);
    // With condition any, a replacement would be created 200 ms after the failure; give it
    // ten times that plus two orchestrator rounds, then there must still be this one task.
    await new Promise((r) => setTimeout(r, 3000));
    const l = await ps('once');
    assert.deepEqual(l.map((x) => [x.id, x.state]), [[t.id, 'failed']], `no replacement: ${JSON.stringify(l)}`);
  });

  test('--replicas-max-per-node 1 with 3 replicas on 2 nodes: one task pending with docker\'s message', async () => {
    ok(await m('service', 'create', '--name', 'spread', '--replicas', '3', '--replicas-max-per-node', '1', '-d', 'whoami'), 'create spread');
    const { value: l } = await waitFor('2 running, 1 pending', async () => {
      const x = await ps('spread');
      return x.filter((t) => t.state === 'running').length === 2 && x.some((t) => t.state === 'pending') && x;
    }, 60_000, 250, async () => JSON.stringify(await ps('spread')));
    assert.deepEqual(new Set(l.filter((t) => t.state === 'running').map((t) => t.node)).size, 2, 'one per node');
    const pending = l.find((t) => t.state === 'pending')!;
    assert.equal(pending.message, 'no suitable node (max replicas per node limit exceed)');
  });

  test('stack deploy: compose volumes, hostname, working_dir, deploy.labels applied; an unsupported key refused naming it', async () => {
    const file = join(tmp, 'stack.yml');
    writeFileSync(file, [
      'services:',
      '  app:',
      `    image: ${IMAGES.busybox}`,
      '    command: ["sleep", "3600"]',
      '    volumes: ["data:/data", {type: tmpfs, target: /scratch}]',
      '    hostname: "{{.Service.Name}}-{{.Task.Slot}}"',
      '    working_dir: /data',
      '    deploy:',
      '      labels: {team: shop}',
      'volumes:',
      '  data:',
      '',
    ].join('\n'));
    ok(await m('stack', 'deploy', '-c', file, 'cf'), 'stack deploy cf');
    assert.equal((await execIn('cf-app', ['hostname'])).stdout.trim(), 'cf-app-1');
    assert.equal((await execIn('cf-app', ['pwd'])).stdout.trim(), '/data');
    const mounts = (await execIn('cf-app', ['cat', '/proc/mounts'])).stdout;
    assert.ok(mounts.split('\n').some((l) => l.split(' ')[1] === '/data'), `/data mounted:\n${mounts}`);
    assert.ok(mounts.split('\n').some((l) => l.startsWith('tmpfs /scratch ')), `/scratch tmpfs:\n${mounts}`);
    assert.equal(docker('volume', 'inspect', '-f', '{{.Name}}', STACK_VOLUME).stdout.trim(), STACK_VOLUME, 'the engine created the stack\'s named volume');
    assert.equal(ok(await m('service', 'inspect', 'cf-app', '--format', '{{json .spec.labels}}'), 'inspect').stdout.trim(), '{"team":"shop"}');
    const bad = join(tmp, 'depends.yml');
    writeFileSync(bad, `services:\n  other:\n    image: ${IMAGES.busybox}\n    depends_on: [x]\n`);
    const r = await m('stack', 'deploy', '-c', bad, 'cg');
    assert.notEqual(r.code, 0, 'refused');
    assert.match(r.stderr, /services\.other\.depends_on: not supported by meshd/);
    assert.equal((await m('service', 'inspect', 'cg-other')).code === 0, false, 'nothing of the refused file was deployed');
  });
});
