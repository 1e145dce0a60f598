/**
 * Issue 8: `netctl debug trace` on a 3-node cluster names the right backend set and VXLAN
 * peers, and flags a deliberately deleted FDB entry and a deleted nft map element as drift.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { netctl } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'ittrc';
let lab: LabState;
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);
interface Hop { hop: string; where: string; detail: string; ok: boolean }

before(async () => {
  lab = await createLab({ name: LAB, nodes: 3 });
  await joinLabCluster(lab, `/run/meshd/${LAB}/worker.token`, { json: false, timeoutMs: 120_000 });
  assert.equal((await on('n1', 'network', 'create', '-d', 'overlay', 'app')).code, 0);
  const c = await on('n1', 'service', 'create', '--name', 'web', '--replicas', '3', '-p', '8080:80', '--network', 'app', 'whoami');
  assert.equal(c.code, 0, c.stderr);
  await waitFor('the mesh answers on n3', () => spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '2', 'http://10.99.1.3:8080/'], { encoding: 'utf8' }).stdout.includes('task: web.'), 60_000, 500);
});
after(async () => {
  await destroyLab(LAB);
});

async function traceJson(args: string[]): Promise<{ drift: boolean; hops: Hop[] }> {
  const r = await netctl(['--lab', LAB, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { drift: boolean; hops: Hop[] };
}

test('trace through the mesh names every backend, its VXLAN peer and its task', async () => {
  let lastTrace = '';
  const t = await waitFor('a consistent path over all 3 tasks', async () => {
    const x = await traceJson(['debug', 'trace', '--to', 'n3:8080', '--format', 'json']);
    lastTrace = JSON.stringify(x);
    const backends = x.hops.find((h) => h.hop === 'backends')?.detail ?? '';
    return !x.drift && (backends.match(/10\.255\.\d+\.\d+:80/g) ?? []).length === 3 ? x : undefined;
  }, 90_000, 500).catch(async (e: Error) => {
    const lb = await netctl(['--lab', LAB, '--node', 'n3', 'debug', 'lb']);
    throw new Error(`${e.message}\nlast trace: ${lastTrace}\nn3 debug lb:\n${lb.stdout}${lb.stderr}`);
  });
  const hops = t.value.hops;
  assert.equal(hops[0]!.hop, 'published port');
  const backends = hops.find((h) => h.hop === 'backends')!;
  assert.equal((backends.detail.match(/10\.255\.\d+\.\d+:80/g) ?? []).length, 3, backends.detail);
  const tasks = hops.filter((h) => h.hop === 'task');
  assert.deepEqual(tasks.map((h) => h.where).sort(), ['n1', 'n2', 'n3'], 'one task on each node (spread)');
  const peers = hops.filter((h) => h.hop === 'vxlan' && /VXLAN peer/.test(h.detail));
  assert.equal(peers.length, 2, 'two remote backends, each through its node\'s underlay address');
  for (const p of peers) assert.match(p.detail, /VXLAN peer 10\.99\.1\.[12] \(n[12]\)/);
  const table = await netctl(['--lab', LAB, 'debug', 'trace', '--to', 'n3:8080']);
  assert.match(table.stdout, /path consistent/);
});

test('a deleted FDB entry and a deleted nft element show up as drift', async () => {
  // the VXLAN peer of one remote ingress backend on n3
  const before = await traceJson(['debug', 'trace', '--to', 'n3:8080', '--format', 'json']);
  const peer = before.hops.find((h) => h.hop === 'vxlan' && /VXLAN peer/.test(h.detail))!;
  const [, ip, mac, dst] = /^(\S+) \((\S+)\) → VXLAN peer (\S+)/.exec(peer.detail)!;
  const sbox = 'mlab-ittrc-n3-ov-ingress';
  const dev = spawnSync('ip', ['-n', sbox, '-br', 'link'], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.startsWith('vx-'))!.split(/[\s@]/)[0]!;
  // Any overlay reconcile (table events trigger them) repairs the FDB from kernel state; if one
  // lands between the delete and the trace, the entry is back and the attempt is repeated (at most 3).
  let fdbSeen = false;
  let fdbLast = '';
  for (let attempt = 1; attempt <= 3 && !fdbSeen; attempt++) {
    assert.equal(spawnSync('bridge', ['-n', sbox, 'fdb', 'del', mac!, 'dev', dev, 'dst', dst!, 'self']).status, 0);
    const t1 = await traceJson(['debug', 'trace', '--to', 'n3:8080', '--format', 'json']);
    fdbLast = JSON.stringify(t1.hops);
    fdbSeen = t1.drift === true && t1.hops.some((h) => !h.ok && h.hop === 'vxlan' && h.detail.includes(ip!) && /FDB MISSING/.test(h.detail));
    if (!fdbSeen) {
      const fdb = spawnSync('bridge', ['-n', sbox, 'fdb', 'show', 'dev', dev], { encoding: 'utf8' }).stdout;
      assert.ok(fdb.includes(`${mac} dst ${dst}`), `trace saw no drift, yet the deleted FDB entry was not repaired either: ${fdbLast}`);
      process.stdout.write(`# attempt ${attempt}: an overlay reconcile repaired the FDB entry before the trace looked; again\n`);
    }
  }
  assert.ok(fdbSeen, fdbLast);

  // an nft map element of the ingress rule on n3, deleted behind the agent's back. The agent's own
  // drift check (every 10 s) repairs it by itself; if that repair lands between the delete and the
  // trace, the element is back in the kernel and the attempt is repeated (at most 3).
  const listMap = () => spawnSync('ip', ['netns', 'exec', 'mlab-ittrc-n3-ingress', 'nft', 'list', 'map', 'ip', 'meshd-lb', 'ingress-targets-tcp'], { encoding: 'utf8' }).stdout;
  let seen = false;
  let last = '';
  for (let attempt = 1; attempt <= 3 && !seen; attempt++) {
    const ruleset = listMap();
    const m = /(0x[0-9a-f]+) : (10\.255\.\d+\.\d+) \. 80/.exec(ruleset)!; // slot mark → task address . port
    assert.ok(m, ruleset);
    assert.equal(spawnSync('ip', ['netns', 'exec', 'mlab-ittrc-n3-ingress', 'nft', 'delete', 'element', 'ip', 'meshd-lb', 'ingress-targets-tcp', `{ ${m[1]} }`]).status, 0);
    const t2 = await traceJson(['debug', 'trace', '--to', 'n3:8080', '--format', 'json']);
    last = JSON.stringify(t2.hops);
    seen = t2.drift === true && t2.hops.some((h) => !h.ok && h.hop === 'backends' && h.detail.includes(`MISSING ${m[2]}:80`));
    if (!seen) {
      assert.ok(listMap().includes(`${m[1]} : ${m[2]} . 80`), `trace saw no drift, yet the deleted element ${m[1]} was not repaired either: ${last}`);
      process.stdout.write(`# attempt ${attempt}: the agent's drift check repaired the element before the trace looked; again\n`);
    }
  }
  assert.ok(seen, last);
});

test('bad input: unknown port, malformed --to', async () => {
  const r = await netctl(['--lab', LAB, 'debug', 'trace', '--to', 'n3:9999']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /^netctl: no service publishes tcp\/9999 on n3/);
  const b = await netctl(['--lab', LAB, 'debug', 'trace', '--to', 'n3']);
  assert.equal(b.code, 2);
});
