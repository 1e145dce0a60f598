/**
 * Issue 16 §4, secure by default: a lab WITHOUT the lab's shared key file. `cluster init` makes
 * the gossip key and keeps it in the manager's store, `cluster join` hands it out over the mTLS
 * join; the members then see each other over encrypted gossip. A meshd with no key in a lab
 * namespace can neither join the membership nor get a table entry accepted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabState } from '../../../src/lab/lab.js';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { MESHD, netctl } from '../../helpers/cli.js';

const LAB = 'mk16';
const RUN = `/run/meshd/${LAB}`;
let lab: LabState;
interface M { name: string; state: string }
interface Keys { encrypted: boolean; keys: Array<{ fingerprint: string; primary: boolean }> }
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);
const alive = async (n: string) => (await agentClient(lab, n).call<M[]>('GET', '/v1/gossip/members')).filter((m) => m.state === 'alive').map((m) => m.name).sort().join(',');
const keysOf = (n: string) => agentClient(lab, n).call<Keys>('GET', '/v1/gossip/keys');
const decryptDrops = async (n: string) => (await agentClient(lab, n).call<{ drops: Record<string, number> }>('GET', '/v1/gossip/metrics')).drops.decrypt ?? 0;

before(async () => {
  lab = await createLab({ name: LAB, nodes: 3, gossipPreset: 'local', encrypt: false });
  assert.equal(lab.keyFile, null, 'the lab shares no key file');
  for (const n of lab.nodes) assert.equal((await keysOf(n.name)).encrypted, false, `${n.name} starts without a key (plain text, not in a cluster)`);
  const init = await on('n1', 'cluster', 'init');
  assert.equal(init.code, 0, init.stderr);
  const token = (await on('n1', 'cluster', 'join-token', 'worker', '-q')).stdout.trim();
  writeFileSync(join(RUN, 'worker.token'), token + '\n', { mode: 0o600 });
  for (const n of ['n2', 'n3']) {
    const r = await on(n, 'cluster', 'join', '--token-file', join(RUN, 'worker.token'), `${lab.nodes[0]!.underlay}:2377`);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await destroyLab(LAB);
});

test('init makes the key, join hands it out: every member encrypted with the same key, and all alive', async () => {
  const fps = await Promise.all(lab.nodes.map(async (n) => JSON.stringify((await keysOf(n.name)).keys)));
  for (const n of lab.nodes) assert.equal((await keysOf(n.name)).encrypted, true, `${n.name} gossips encrypted`);
  assert.equal(new Set(fps).size, 1, `one cluster keyring: ${fps.join(' | ')}`);
  assert.equal((await keysOf('n1')).keys.length, 1);
  await waitFor('every node sees n1,n2,n3 alive', async () => (await Promise.all(lab.nodes.map((n) => alive(n.name)))).every((v) => v === 'n1,n2,n3'), 20_000, 200,
    async () => `alive: ${JSON.stringify(await Promise.all(lab.nodes.map((n) => alive(n.name))))}`);
  // The key itself is in no log and no argv: only its fingerprint is shown.
  const key = readFileSync(join(RUN, 'n2', 'data', 'gossip-keys'), 'utf8').trim();
  for (const n of lab.nodes) assert.ok(!readFileSync(n.log, 'utf8').includes(key), `${n.name}'s log does not hold the key`);
});

test('a meshd with no key in a lab namespace can neither join the membership nor get a table entry accepted', async () => {
  await Promise.all(lab.nodes.map((n) => agentClient(lab, n.name).call('POST', '/v1/gossip/networks/sec')));
  const dir = join(RUN, 'intruder');
  mkdirSync(dir, { recursive: true });
  const cfg = {
    nodeName: 'intruder', advertiseAddr: lab.client.underlay, controlSocket: join(dir, 'a.sock'), dataDir: join(dir, 'data'), logLevel: 'warn',
    gossip: { preset: 'local', seeds: [`${lab.nodes[0]!.underlay}:7946`] },
  };
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  const d0 = await decryptDrops('n1');
  const child = spawn('ip', ['netns', 'exec', lab.client.netns, process.execPath, MESHD, '--config', join(dir, 'cfg.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    const intruder = new ApiClient({ socketPath: join(dir, 'a.sock') });
    await waitFor('the intruder agent to be up', () => intruder.call<{ ready: boolean }>('GET', '/v1/health').then((h) => h.ready), 30_000, 200, () => Promise.resolve(out.slice(-600)));
    await intruder.call('POST', '/v1/gossip/networks/sec');
    await intruder.call('POST', '/v1/gossip/tables', { network: 'sec', table: 'endpoints', key: 'evil', value: 'redirect' });
    // Its plain-text packets reach n1 and are refused there (counted), which is what we wait on.
    await waitFor('n1 to count the intruder\'s plain-text packets as decrypt drops', async () => (await decryptDrops('n1')) > d0 + 3, 10_000, 200,
      async () => `n1 decrypt drops ${await decryptDrops('n1')} (before ${d0}); intruder log: ${out.slice(-600)}`);
    assert.deepEqual((await intruder.call<M[]>('GET', '/v1/gossip/members')).map((m) => m.name), ['intruder'], 'the intruder sees only itself');
    for (const n of lab.nodes) {
      assert.equal(await alive(n.name), 'n1,n2,n3', `${n.name} never lists the intruder`);
      const tables = await agentClient(lab, n.name).call<Array<{ entries: Array<{ key: string }> }>>('GET', '/v1/gossip/tables?network=sec');
      assert.ok(!tables.some((t) => t.entries.some((e) => e.key === 'evil')), `${n.name} holds no entry of the intruder`);
    }
  } finally {
    child.kill('SIGKILL');
  }
});

test('cluster update --rotate-gossip-key: a new key everywhere, the old one gone, every member alive, no decrypt failure', async () => {
  const before = (await keysOf('n1')).keys.map((k) => k.fingerprint);
  const d0 = await Promise.all(lab.nodes.map((n) => decryptDrops(n.name)));
  const r = await on('n1', 'cluster', 'update', '--rotate-gossip-key');
  assert.equal(r.code, 0, r.stderr);
  const rings = () => Promise.all(lab.nodes.map(async (n) => (await keysOf(n.name)).keys.map((k) => k.fingerprint)));
  await waitFor('every node on one new key, the old one removed', async () => {
    const all = await rings();
    return all.every((fps) => fps.length === 1 && !before.includes(fps[0]!)) && new Set(all.map((f) => f[0])).size === 1;
  }, 30_000, 250, async () => `rings: ${JSON.stringify(await rings())} (old ${JSON.stringify(before)})`);
  await waitFor('every node sees n1,n2,n3 alive', async () => (await Promise.all(lab.nodes.map((n) => alive(n.name)))).every((v) => v === 'n1,n2,n3'), 10_000, 200,
    async () => `alive: ${JSON.stringify(await Promise.all(lab.nodes.map((n) => alive(n.name))))}`);
  const d1 = await Promise.all(lab.nodes.map((n) => decryptDrops(n.name)));
  assert.deepEqual(d1, d0, 'no decrypt failure during the rotation');
});

test('node rm starts a rotation that cuts the removed node off: it keeps the old key and drops out of the membership', async () => {
  const old = (await keysOf('n3')).keys.map((k) => k.fingerprint);
  const r = await on('n1', 'node', 'rm', 'n3');
  assert.equal(r.code, 0, r.stderr);
  const ring = async (n: string) => (await keysOf(n)).keys.map((k) => k.fingerprint);
  await waitFor('n1 and n2 on a new key alone', async () => {
    const [a, b] = [await ring('n1'), await ring('n2')];
    return a.length === 1 && JSON.stringify(a) === JSON.stringify(b) && !old.includes(a[0]!);
  }, 30_000, 250, async () => `n1 ${JSON.stringify(await ring('n1'))} n2 ${JSON.stringify(await ring('n2'))} n3 ${JSON.stringify(await ring('n3'))} (old ${JSON.stringify(old)})`);
  assert.deepEqual(await ring('n3'), old, 'the removed node never got the new key (its certificate no longer pulls the ring)');
  await waitFor('n1 and n2 no longer see n3 alive', async () => (await alive('n1')) === 'n1,n2' && (await alive('n2')) === 'n1,n2', 20_000, 250,
    async () => `alive: n1 ${await alive('n1')}, n2 ${await alive('n2')}`);
});
