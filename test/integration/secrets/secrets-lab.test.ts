/**
 * Issue 15's secrets-and-configs row (and issue 16 §4's store sealing) end to end on a 2-node
 * lab (`msec`) with Debian's docker.io, through the real netctl and meshd (images built
 * locally, never pulled):
 * - `secret create` from a file and from stdin: the plain text never shows in `ps` during the
 *   create, never in `secret inspect`, never in the manager's SQLite files (state.db and its
 *   WAL, read raw), never in any log line of any meshd of the lab;
 * - a docker service with `--secret NAME`, a long-form `--secret source=..,target=..,mode=..`
 *   and `--config source=..,target=..`: readable inside the task (`netctl exec`) with the mode
 *   asked for, from a per-task dir on the node's tmpfs;
 * - `secret rm` of a secret in use is refused naming the service; a netns service with a
 *   secret is refused with MESHD_UNSUPPORTED naming the runtime;
 * - rotation: `service update --secret-rm old --secret-add source=new,target=old` gives the
 *   new task the new content at the old path, and the old task's files leave the node;
 * - `service rm`: the task files are gone from the node's tmpfs; the secret can then be removed;
 * - `stack deploy` of a compose file with top-level `secrets`/`configs` (file:) and both
 *   service-level forms: created as `<stack>_<key>`, readable in the task at the key's path;
 *   `stack rm` removes them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { netctl } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import { labRunDir } from '../../../src/lab/plan.js';

const LAB = 'msec';
const L = new DockerLab(LAB);
const tmp = L.tmp;
let lab: LabState;
const on = (node: string, ...args: string[]) => L.on(node, ...args);
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; error?: string | null }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
const running = async (service: string) => (await ps(service)).filter((t) => t.desiredState === 'running' && t.state === 'running');
async function execIn(t: TaskJ, argv: string[]): Promise<string> {
  return ok(await on(t.node!, 'exec', t.name, '--', ...argv), `exec ${argv.join(' ')} in ${t.name}`).stdout;
}
/** A node's task-files tmpfs (worker: <dataDir>/task-files). */
const filesDir = (node: string): string => join(labRunDir(LAB), node, 'data', 'task-files');
const taskDirs = (node: string): string[] => (existsSync(filesDir(node)) ? readdirSync(filesDir(node)) : []);

// Plain texts the test looks for everywhere they must not be.
const SECRET1 = `msec-one-${randomBytes(12).toString('hex')}`;
const SECRET2 = `msec-two-${randomBytes(12).toString('hex')}`;
const SECRET3 = `msec-three-${randomBytes(12).toString('hex')}`;
const CONFIG1 = `listen ${randomBytes(6).toString('hex')}\n`;

/** The manager's SQLite files (state.db, its WAL), read raw: no plain text of any payload or the gossip key. */
function assertStoreSealed(): void {
  const needles = [SECRET1, SECRET2, SECRET3, CONFIG1.trim()];
  const clusterDir = join(labRunDir(LAB), 'n1', 'data', 'cluster');
  const storeFiles = readdirSync(clusterDir).filter((f) => f.startsWith('state.db'));
  assert.ok(storeFiles.includes('state.db'), `the manager's sqlite file: ${storeFiles.join(', ')}`);
  const gossipKey = lab.keyFile ? readFileSync(lab.keyFile, 'utf8').trim() : undefined;
  for (const f of storeFiles) {
    const raw = readFileSync(join(clusterDir, f));
    for (const s of needles) assert.ok(!raw.includes(Buffer.from(s)), `${f} holds a plain text`);
    if (gossipKey) assert.ok(!raw.includes(Buffer.from(gossipKey)), `${f} holds the gossip key in plain text`);
  }
}

before(async () => {
  lab = await L.up({ nodes: 2, networks: ['app'] });
});
after(async () => {
  if (process.env.MSEC_KEEP_LAB) return;
  await L.down();
});

describe('secrets and configs (lab, docker runtime)', { timeout: 600_000 }, () => {
  test('create from a file and stdin: never in ps, inspect shows no payload', async () => {
    const f1 = join(tmp, 's1');
    writeFileSync(f1, SECRET1, { mode: 0o600 });
    // Watch the host's process list while the create runs: the plain text must never be in argv.
    const create = m('secret', 'create', 'pw', f1);
    let done = false;
    void create.finally(() => { done = true; });
    let snapshots = 0;
    while (!done) {
      const list = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
      assert.ok(!list.includes(SECRET1), 'the secret is in the host\'s process list');
      snapshots++;
      await new Promise((r) => setTimeout(r, 20));
    }
    ok(await create, 'secret create pw');
    assert.ok(snapshots > 0, 'ps was read while the create ran');
    ok(await netctl(['--lab', LAB, '--node', 'n1', 'secret', 'create', 'pw2', '-'], { input: SECRET2 }), 'secret create pw2 from stdin');
    const cf = join(tmp, 'c1');
    writeFileSync(cf, CONFIG1);
    ok(await m('config', 'create', 'app-conf', cf), 'config create');
    assert.deepEqual(ok(await m('secret', 'ls', '--format', '{{.name}}'), 'secret ls').stdout.trim().split('\n').sort(), ['pw', 'pw2']);
    const inspect = ok(await m('secret', 'inspect', 'pw'), 'secret inspect').stdout;
    assert.ok(!inspect.includes(SECRET1) && !inspect.includes(Buffer.from(SECRET1).toString('base64')), 'inspect shows no payload');
    assert.equal((JSON.parse(inspect) as Array<{ size: number }>)[0]!.size, SECRET1.length);
    const dup = await m('secret', 'create', 'pw', f1);
    assert.notEqual(dup.code, 0, 'a second secret of the same name is refused');
    assert.match(dup.stderr, /already exists/);
  });

  test('a docker task reads its secrets and config; the netns runtime is refused', async () => {
    ok(await m('service', 'create', '--name', 'sec', '--network', 'app', '--timeout', '180s',
      '--secret', 'pw', '--secret', 'source=pw2,target=other,mode=0440', '--config', 'source=app-conf,target=/etc/app.conf',
      IMAGES.busybox, 'sleep', '3600'), 'create sec');
    const [t] = await running('sec');
    assert.ok(t, `a running task: ${JSON.stringify(await ps('sec'))}`);
    assert.equal(await execIn(t, ['cat', '/run/secrets/pw']), SECRET1);
    assert.equal(await execIn(t, ['cat', '/run/secrets/other']), SECRET2);
    assert.equal(await execIn(t, ['cat', '/etc/app.conf']), CONFIG1);
    assert.equal((await execIn(t, ['stat', '-c', '%a', '/run/secrets/pw', '/run/secrets/other', '/etc/app.conf'])).trim().split('\n').join(' '), '400 440 444');
    const mounts = await execIn(t, ['cat', '/proc/mounts']);
    assert.match(mounts.split('\n').find((l) => l.split(' ')[1] === '/run/secrets/pw') ?? '', /^tmpfs \S+ tmpfs ro[,\s]/, `/run/secrets/pw: a read-only tmpfs file:\n${mounts}`);
    // On the node: a per-task dir on the tmpfs.
    assert.deepEqual(taskDirs(t.node!), [t.id]);
    assert.equal(spawnSync('stat', ['-f', '-c', '%T', filesDir(t.node!)], { encoding: 'utf8' }).stdout.trim(), 'tmpfs');
    assertStoreSealed();

    const inUse = await m('secret', 'rm', 'pw');
    assert.notEqual(inUse.code, 0, 'rm of a secret in use is refused');
    assert.match(inUse.stderr, /secret pw is in use by the following service: sec/);
    const ns = await m('service', 'create', '--name', 'nsec', '--runtime', 'netns', '--secret', 'pw', 'whoami');
    assert.notEqual(ns.code, 0, 'a netns service with a secret is refused');
    assert.match(ns.stderr, /secrets are not supported by the netns runtime/);
  });

  test('rotation: --secret-rm old --secret-add new,target=old replaces the file in the new task', async () => {
    const [old] = await running('sec');
    const f3 = join(tmp, 's3');
    writeFileSync(f3, SECRET3, { mode: 0o600 });
    ok(await m('secret', 'create', 'pw-v2', f3), 'secret create pw-v2');
    ok(await m('service', 'update', 'sec', '--timeout', '180s', '--secret-rm', 'pw', '--secret-add', 'source=pw-v2,target=pw'), 'rotate');
    const { value: t } = await waitFor('a new running task of sec', async () => {
      const r = (await running('sec')).filter((x) => x.id !== old!.id);
      return r.length === 1 && r[0];
    }, 60_000, 250, async () => JSON.stringify(await ps('sec')));
    assert.equal(await execIn(t, ['cat', '/run/secrets/pw']), SECRET3);
    await waitFor(`the old task's files leave ${old!.node}`, () => !taskDirs(old!.node!).includes(old!.id) && taskDirs(old!.node!), 30_000, 200);
    ok(await m('secret', 'rm', 'pw'), 'the old secret is free now');
  });

  test('service rm: the files leave the node; the store and every log hold no plain text', async () => {
    const [t] = await running('sec');
    ok(await m('service', 'rm', 'sec'), 'service rm');
    await waitFor(`no task files on ${t!.node}`, () => taskDirs(t!.node!).length === 0 && 'empty', 60_000, 250, () => taskDirs(t!.node!).join(', '));
    ok(await m('secret', 'rm', 'pw2', 'pw-v2'), 'secret rm');
    ok(await m('config', 'rm', 'app-conf'), 'config rm');

    assertStoreSealed();
    const needles = [SECRET1, SECRET2, SECRET3, CONFIG1.trim()];
    for (const n of lab.nodes) {
      const log = readFileSync(n.log, 'utf8');
      assert.ok(log.length > 0, `${n.name} logged something`);
      for (const s of needles) assert.ok(!log.includes(s), `${n.name}'s log holds a plain text`);
    }
  });

  test('compose: top-level secrets/configs from files, short and long service forms; stack rm removes them', async () => {
    const dir = join(tmp, 'stack');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pw.txt'), SECRET1, { mode: 0o600 });
    writeFileSync(join(dir, 'app.conf'), CONFIG1);
    const file = join(dir, 'stack.yml');
    writeFileSync(file, [
      'services:',
      '  app:',
      `    image: ${IMAGES.busybox}`,
      '    command: sleep 3600',
      '    secrets:',
      '      - pw',
      '      - {source: pw, target: copy, mode: 0440}',
      '    configs:',
      '      - source: conf',
      '        target: /etc/app.conf',
      'secrets:',
      '  pw: {file: ./pw.txt}',
      'configs:',
      '  conf: {file: ./app.conf}',
      '',
    ].join('\n'));
    ok(await m('stack', 'deploy', '-c', file, 'sk'), 'stack deploy sk');
    assert.deepEqual(ok(await m('secret', 'ls', '--format', '{{.name}}'), 'secret ls').stdout.trim().split('\n'), ['sk_pw']);
    const { value: t } = await waitFor('a running task of sk-app', async () => (await running('sk-app'))[0], 120_000, 500, async () => JSON.stringify(await ps('sk-app')));
    assert.equal(await execIn(t, ['cat', '/run/secrets/pw']), SECRET1);
    assert.equal((await execIn(t, ['stat', '-c', '%a', '/run/secrets/copy'])).trim(), '440');
    assert.equal(await execIn(t, ['cat', '/etc/app.conf']), CONFIG1);
    ok(await m('stack', 'rm', 'sk'), 'stack rm');
    assert.equal(ok(await m('secret', 'ls', '-q'), 'secret ls').stdout.trim(), '', 'the stack\'s secret is gone');
    assert.equal(ok(await m('config', 'ls', '-q'), 'config ls').stdout.trim(), '', 'the stack\'s config is gone');
  });
});
