/**
 * Issue 2 acceptance: the lab through the real netctl binary, real namespaces and agents.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { netctl, inNs } from '../../helpers/cli.js';

const rootLinks = () => spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length;
const rootNft = () => spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;
const labNamespaces = (lab: string) => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`mlab-${lab}-`));
const meshdProcs = (lab: string) => spawnSync('pgrep', ['-f', `/run/meshd/${lab}/`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);

after(async () => {
  await netctl(['lab', 'down', '--name', 'itlab']);
  await netctl(['lab', 'down', '--name', 'itkill']);
});

test('lab up --nodes 5 --format json: every node reachable from the client; exec works; down leaves nothing', async () => {
  const links0 = rootLinks();
  const nft0 = rootNft();
  await netctl(['lab', 'down', '--name', 'itlab']);
  const up = await netctl(['lab', 'up', '--nodes', '5', '--name', 'itlab', '--format', 'json']);
  assert.equal(up.code, 0, up.stderr);
  const lab = JSON.parse(up.stdout) as { nodes: Array<{ name: string; namespace: string; underlay: string; socket: string }> };
  assert.equal(lab.nodes.length, 5);
  assert.deepEqual(lab.nodes.map((n) => n.name), ['n1', 'n2', 'n3', 'n4', 'n5']);
  for (const n of lab.nodes) {
    assert.equal(n.namespace, `mlab-itlab-${n.name}`);
    assert.ok(existsSync(n.socket), n.socket);
    const ping = await netctl(['lab', 'client', '--name', 'itlab', '--', 'ping', '-c1', '-W2', n.underlay]);
    assert.equal(ping.code, 0, `client → ${n.name}: ${ping.stdout}${ping.stderr}`);
  }
  // nodes reach each other; the root namespace has no route into the lab
  assert.equal(inNs('mlab-itlab-n2', ['ping', '-c1', '-W2', lab.nodes[4]!.underlay]).code, 0);
  assert.equal(rootLinks(), links0, 'no links added to the root namespace');
  const routes = spawnSync('ip', ['route', 'show', 'table', 'all'], { encoding: 'utf8' }).stdout;
  assert.ok(!routes.includes('10.99.'), 'the root namespace has no route into the lab');
  assert.ok(!spawnSync('ip', ['-o', 'addr'], { encoding: 'utf8' }).stdout.includes('10.99.'), 'and no lab address');

  const ls = await netctl(['lab', 'ls', '--format', 'json']);
  const labs = JSON.parse(ls.stdout) as Array<{ name: string; nodes: Array<{ running: boolean }> }>;
  const mine = labs.find((l) => l.name === 'itlab');
  assert.ok(mine && mine.nodes.length === 5 && mine.nodes.every((n) => n.running));

  const ex = await netctl(['lab', 'exec', 'n3', '--name', 'itlab', '--', 'ip', '-br', 'addr', 'show', 'eth0']);
  assert.equal(ex.code, 0);
  const info = await netctl(['--lab', 'itlab', '--node', 'n4', 'info', '--format', 'json']);
  assert.equal(info.code, 0, info.stderr);
  assert.equal((JSON.parse(info.stdout) as { node: string }).node, 'n4');
  // exit code of the inner command is passed through
  assert.equal((await netctl(['lab', 'exec', 'n1', '--name', 'itlab', '--', 'sh', '-c', 'exit 7'])).code, 7);

  const down = await netctl(['lab', 'down', '--name', 'itlab']);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(labNamespaces('itlab'), []);
  assert.deepEqual(meshdProcs('itlab'), []);
  assert.ok(!existsSync('/run/meshd/itlab'));
  assert.equal(rootLinks(), links0);
  assert.equal(rootNft(), nft0);
});

test('agents SIGKILLed: lab down --all still removes everything', async () => {
  await netctl(['lab', 'down', '--name', 'itkill']);
  const up = await netctl(['lab', 'up', '--nodes', '3', '--name', 'itkill', '--format', 'json']);
  assert.equal(up.code, 0, up.stderr);
  // a stray process inside a lab namespace (as a crashed task would leave)
  spawnSync('sh', ['-c', 'ip netns exec mlab-itkill-n2 sleep 600 >/dev/null 2>&1 &']);
  for (const n of ['n1', 'n2', 'n3']) assert.equal((await netctl(['lab', 'kill', n, '--name', 'itkill'])).code, 0);
  const ls = JSON.parse((await netctl(['lab', 'ls', '--format', 'json'])).stdout) as Array<{ name: string; nodes: Array<{ running: boolean }> }>;
  assert.ok(ls.find((l) => l.name === 'itkill')!.nodes.every((n) => !n.running));
  const down = await netctl(['lab', 'down', '--all']);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(labNamespaces('itkill'), []);
  assert.equal(spawnSync('pgrep', ['-f', 'sleep 600'], { encoding: 'utf8' }).stdout.trim(), '');
  assert.ok(!existsSync('/run/meshd/itkill'));
});

test('bad input: non-zero exit and one clear line', async () => {
  for (const args of [['lab', 'up', '--nodes', '0'], ['lab', 'up', '--nodes', 'abc'], ['lab', 'bogus'], ['bogus'], ['lab', 'up', '--nodes', '2', '--name', 'Bad_Name'], ['lab', 'exec', 'n1', '--name', 'nolab', '--', 'true'], ['lab', 'down', '--name', 'nolab']]) {
    const r = await netctl(args);
    assert.notEqual(r.code, 0, args.join(' '));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0]!, /^netctl: /);
  }
  assert.deepEqual(labNamespaces('nolab'), []);
});

test('npm start main job (netctl demo) comes up and tears down cleanly', async () => {
  const r = await netctl(['demo', '--name', 'itdemo', '--lab-only', '--exit-after', '1'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /lab itdemo is up/);
  assert.match(r.stdout, /removed lab itdemo/);
  assert.deepEqual(labNamespaces('itdemo'), []);
});
