/** netctl debug members|tables|gossip, keys and lab fault, driving the real binary against a lab. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netctl } from '../../helpers/cli.js';
import { createLab, destroyLab, waitFor } from '../../helpers/lab.js';

const LAB = 'itcli';
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);

before(async () => {
  await createLab({ name: LAB, nodes: 3 });
  await waitFor('3 members', async () => {
    const r = await on('n3', 'debug', 'members', '--format', 'json');
    return r.code === 0 && (JSON.parse(r.stdout) as Array<{ state: string }>).filter((m) => m.state === 'alive').length === 3;
  }, 20_000);
});
after(async () => {
  await destroyLab(LAB);
});

test('debug members: table and json', async () => {
  const t = await on('n1', 'debug', 'members');
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^NAME\s+ADDRESS\s+STATE\s+INCARNATION\s+HEALTH/);
  assert.match(t.stdout, /n2\s+10\.99\.1\.2:7946\s+alive/);
  const j = JSON.parse((await on('n1', 'debug', 'members', '--format', 'json')).stdout) as Array<{ name: string }>;
  assert.deepEqual(j.map((m) => m.name), ['n1', 'n2', 'n3']);
});

test('debug tables and gossip counters', async () => {
  const r = await on('n1', 'debug', 'tables', '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray(JSON.parse(r.stdout)));
  const g = await on('n2', 'debug', 'gossip');
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stdout, /packetsIn\s+\d+/);
});

test('keys: generate, install, use, remove (from files and stdin, never argv); primary removal refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-keys-'));
  try {
    const gen = await netctl(['keys', 'generate']);
    assert.equal(gen.code, 0);
    const key = gen.stdout.trim();
    assert.equal(Buffer.from(key, 'base64').length, 32);
    writeFileSync(join(dir, 'k'), key + '\n', { mode: 0o600 });
    const oldPrimary = JSON.parse((await on('n1', 'keys', 'ls', '--format', 'json')).stdout) as { keys: Array<{ fingerprint: string }> };
    assert.equal((await on('n1', 'keys', 'install', '--key-file', join(dir, 'k'))).code, 0);
    const viaStdin = await netctl(['--lab', LAB, '--node', 'n1', 'keys', 'use'], { input: key + '\n' });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    const ls = JSON.parse((await on('n1', 'keys', 'ls', '--format', 'json')).stdout) as { keys: Array<{ fingerprint: string; primary: boolean }> };
    assert.equal(ls.keys.length, 2);
    assert.notEqual(ls.keys[0]!.fingerprint, oldPrimary.keys[0]!.fingerprint);
    const refuse = await on('n1', 'keys', 'remove', '--key-file', join(dir, 'k'));
    assert.equal(refuse.code, 2);
    assert.match(refuse.stderr, /^netctl: refusing to remove the primary key/);
    writeFileSync(join(dir, 'bad'), 'not-a-key\n');
    const bad = await on('n1', 'keys', 'install', '--key-file', join(dir, 'bad'));
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    // back to the lab's key as primary, so the rest of the cluster can read n1 again
    assert.equal((await on('n1', 'keys', 'use', '--key-file', `/run/meshd/${LAB}/gossip.key`)).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lab fault partition / heal through the CLI; bad input is one clear line', async () => {
  const p = await netctl(['lab', 'fault', 'partition', '--name', LAB, 'n1', 'n2,n3']);
  assert.equal(p.code, 0, p.stderr);
  const ping = await netctl(['lab', 'exec', 'n2', '--name', LAB, '--', 'ping', '-c1', '-W1', '10.99.1.1']);
  assert.notEqual(ping.code, 0, 'n2 cannot reach n1 across the partition');
  assert.equal((await netctl(['lab', 'fault', 'heal', '--name', LAB])).code, 0);
  assert.equal((await netctl(['lab', 'exec', 'n2', '--name', LAB, '--', 'ping', '-c1', '-W2', '10.99.1.1'])).code, 0);
  // block: one node's traffic with the nodes named in --from (n3 keeps reaching n1).
  const b = await netctl(['lab', 'fault', 'block', 'n2', '--name', LAB, '--from', 'n1']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, 'blocked n2\n');
  assert.notEqual((await netctl(['lab', 'exec', 'n2', '--name', LAB, '--', 'ping', '-c1', '-W1', '10.99.1.1'])).code, 0, 'n2 ↛ n1 while blocked');
  assert.equal((await netctl(['lab', 'exec', 'n3', '--name', LAB, '--', 'ping', '-c1', '-W2', '10.99.1.1'])).code, 0, 'n3 → n1 unaffected');
  assert.equal((await netctl(['lab', 'fault', 'heal', '--name', LAB])).code, 0);
  await waitFor('n2 → n1 after heal', async () => (await netctl(['lab', 'exec', 'n2', '--name', LAB, '--', 'ping', '-c1', '-W2', '10.99.1.1'])).code === 0, 15_000, 500);
  for (const args of [['lab', 'fault', 'partition', '--name', LAB, 'n1'], ['lab', 'fault', 'block', 'n9', '--name', LAB], ['lab', 'fault', 'block', 'n1', '--name', LAB, '--proto', 'icmp'], ['--lab', LAB, '--node', 'n7', 'debug', 'members']]) {
    const r = await netctl(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('agents expose Prometheus metrics on the control API (gossip, tables, DNS, LB)', async () => {
  const { ApiClient } = await import('../../../src/adapters/api/client.js');
  const c = new ApiClient({ socketPath: `/run/meshd/${LAB}/n2.sock` });
  await waitFor('n2 sees 3 alive members', async () => /meshd_gossip_members\{state="alive",node="n2"\} 3/.test(await c.text('/metrics')), 20_000);
  const text = await c.text('/metrics');
  for (const name of ['meshd_gossip_packets_total', 'meshd_gossip_bytes_total', 'meshd_gossip_members', 'meshd_gossip_health_score', 'meshd_dns_queries_total', 'meshd_dns_answer_latency_seconds_bucket', 'meshd_lb_last_sync_seconds', 'meshd_lb_syncs_total', 'meshd_lb_programmed', 'meshd_drain_total']) {
    assert.match(text, new RegExp(`^${name}\\{`, 'm'), name);
  }
  assert.match(text, /meshd_gossip_members\{state="alive",node="n2"\} 3/);
});
