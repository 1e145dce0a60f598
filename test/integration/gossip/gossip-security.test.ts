/**
 * Issue 3 / ARCHITECTURE §4 cases 7 and 8 against live agents: 10⁴ fuzzed datagrams (raw and
 * sealed with the right key, so they reach the parser), a node with the wrong key, and key
 * rotation under load.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LabState } from '../../../src/lab/lab.js';
import { MeshError } from '../../../src/core/errors.js';
import { realExec } from '../../../src/adapters/exec.js';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { MESHD, ROOT } from '../../helpers/cli.js';

const LAB = 'itgsec';
let lab: LabState;
interface M {
  name: string;
  state: string;
}
interface Metrics {
  drops: Record<string, number>;
  packetsIn: number;
}
const membership = async (n: string) => (await agentClient(lab, n).call<M[]>('GET', '/v1/gossip/members')).map((m) => `${m.name}:${m.state}`).join(',');
const metrics = (n: string) => agentClient(lab, n).call<Metrics>('GET', '/v1/gossip/metrics');
const dropsTotal = (m: Metrics) => Object.values(m.drops).reduce((a, b) => a + b, 0);

/** A namespace's /proc/net/snmp as `Proto.Field` → value (Ip, Icmp, Tcp, Udp, ... counters of that netns). */
async function snmp(netns: string): Promise<Map<string, number>> {
  const r = await realExec.run('cat', ['/proc/net/snmp'], { netns });
  assert.equal(r.code, 0, r.stderr);
  const out = new Map<string, number>();
  const lines = r.stdout.trim().split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [proto, ...names] = lines[i]!.split(/\s+/);
    const vals = lines[i + 1]!.split(/\s+/).slice(1);
    names.forEach((n, j) => out.set(`${proto!.replace(':', '')}.${n}`, Number(vals[j])));
  }
  return out;
}
/** Counters that moved between two snapshots (for the report). */
const moved = (a: Map<string, number>, b: Map<string, number>) => Object.fromEntries([...b].filter(([k, v]) => v !== (a.get(k) ?? 0) && !/Forwarding|DefaultTTL|Max|Min|Algorithm|CurrEstab/.test(k)).map(([k, v]) => [k, v - (a.get(k) ?? 0)]));

before(async () => {
  lab = await createLab({ name: LAB, nodes: 4, gossipPreset: 'local' });
  await waitFor('full membership', async () => (await Promise.all(lab.nodes.map((n) => membership(n.name)))).every((v) => v.split(',').filter((x) => x.endsWith(':alive')).length === 4), 20_000);
});
after(async () => {
  await destroyLab(LAB);
});

test('10^4 fuzzed datagrams into a live agent: no crash, all dropped and counted, membership unchanged', async () => {
  const before = await Promise.all(lab.nodes.map((n) => membership(n.name)));
  const m0 = await metrics('n1');
  const n1ns = lab.nodes[0]!.netns;
  const k0 = await snmp(n1ns);
  const c0 = await snmp(lab.client.netns);
  const sender = join(ROOT, 'dist', 'test', 'integration', 'gossip', 'fuzz-sender.js');
  const r = spawnSync('ip', ['netns', 'exec', lab.client.netns, process.execPath, sender, `${lab.nodes[0]!.underlay}:7946`, '10000', '42', lab.keyFile!], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const sent = JSON.parse(r.stdout) as { sent: number; failed: Record<string, number>; families: Record<string, number> };
  assert.equal(sent.sent, 10_000, `the kernel refused sends: ${JSON.stringify(sent.failed)}`);
  // Every datagram is either read by the agent (and must then be dropped and counted) or lost in
  // n1's kernel before the agent could read it: a full socket receive buffer (Udp.InErrors, which
  // includes RcvbufErrors) or, for the oversized cases sent as IP fragments, a failed reassembly
  // (Ip.ReasmFails). Nothing else can happen to it on a veth, so the two must add up to 10,000.
  let m1 = m0;
  let k1 = k0;
  let lost = 0;
  const agentDropped = () => dropsTotal(m1) - dropsTotal(m0);
  const { ms } = await waitFor('every fuzzed datagram dropped by the agent or lost in the kernel', async () => {
    m1 = await metrics('n1'); // the agent still answers
    k1 = await snmp(n1ns);
    lost = k1.get('Udp.InErrors')! - k0.get('Udp.InErrors')! + k1.get('Ip.ReasmFails')! - k0.get('Ip.ReasmFails')!;
    return agentDropped() + lost >= 10_000;
  }, 10_000, 100, async () => `last counts: agent dropped ${agentDropped()} ${JSON.stringify(m1.drops)}; n1 kernel ${JSON.stringify(moved(k0, k1))}; sender's kernel ${JSON.stringify(moved(c0, await snmp(lab.client.netns)))}`);
  const dropped = agentDropped();
  console.log(`fuzz: ${sent.sent} sent (${JSON.stringify(sent.families)}), ${dropped} dropped and counted by the agent, ${lost} lost in n1's kernel ` +
    `(accounted ${ms} ms after the last send): ${JSON.stringify(m1.drops)}; n1 kernel ${JSON.stringify(moved(k0, k1))}`);
  assert.equal(dropped + lost, 10_000, 'every fuzzed datagram is dropped and counted, or lost in the kernel (and counted there)');
  assert.ok((m1.drops.decrypt ?? 0) > (m0.drops.decrypt ?? 0), 'unsealed and tag-flipped packets are counted as decrypt drops');
  const after = await Promise.all(lab.nodes.map((n) => membership(n.name)));
  assert.deepEqual(after, before, 'membership unchanged on every node');
});

test('a node with the wrong key cannot join, and is counted as decrypt drops', async () => {
  const dir = join('/run/meshd', LAB, 'intruder');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const cfg = {
    nodeName: 'intruder', advertiseAddr: lab.client.underlay, controlSocket: join(dir, 'a.sock'), dataDir: join(dir, 'data'), logLevel: 'warn',
    gossip: { preset: 'local', seeds: [`${lab.nodes[0]!.underlay}:7946`], keyFile: join(dir, 'key') },
  };
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  const d0 = (await metrics('n1')).drops.decrypt ?? 0;
  const child = spawn('ip', ['netns', 'exec', lab.client.netns, process.execPath, MESHD, '--config', join(dir, 'cfg.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let childErr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (childErr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (childErr += d)); // logs go to stdout
  try {
    const intruder = new ApiClient({ socketPath: join(dir, 'a.sock') });
    await waitFor('the intruder agent to be up', () => intruder.call<{ ready: boolean }>('GET', '/v1/health').then((h) => h.ready), 30_000);
    await new Promise((res) => setTimeout(res, 3000));
    assert.deepEqual((await intruder.call<M[]>('GET', '/v1/gossip/members')).map((m) => m.name), ['intruder'], 'the intruder sees only itself');
    for (const n of lab.nodes) assert.ok(!(await membership(n.name)).includes('intruder'), `${n.name} never lists the intruder`);
    assert.ok(((await metrics('n1')).drops.decrypt ?? 0) > d0, `its packets are counted as decrypt drops (intruder log: ${childErr.slice(-600)})`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('key rotation under load: install → use → remove everywhere, with zero decrypt failures; the primary cannot be removed', async () => {
  const oldKey = readFileSync(lab.keyFile!, 'utf8').trim();
  const newKey = randomBytes(32).toString('base64');
  const d0 = await Promise.all(lab.nodes.map(async (n) => (await metrics(n.name)).drops.decrypt ?? 0));
  // load: a steady stream of table writes while keys change
  await Promise.all(lab.nodes.map((n) => agentClient(lab, n.name).call('POST', '/v1/gossip/networks/load')));
  let writing = true;
  const load = (async () => {
    let i = 0;
    while (writing) {
      const n = lab.nodes[i % lab.nodes.length]!;
      await agentClient(lab, n.name).call('POST', '/v1/gossip/tables', { network: 'load', table: 't', key: `k${i % 50}`, value: `v${i}` });
      i++;
      await new Promise((res) => setTimeout(res, 10));
    }
    return i;
  })();
  const all = (op: string, key: string) => Promise.all(lab.nodes.map((n) => agentClient(lab, n.name).call('POST', '/v1/gossip/keys', { op, key })));
  await all('install', newKey);
  await new Promise((res) => setTimeout(res, 500));
  await all('use', newKey);
  await new Promise((res) => setTimeout(res, 500));
  await assert.rejects(agentClient(lab, 'n1').call('POST', '/v1/gossip/keys', { op: 'remove', key: newKey }), (e: unknown) => e instanceof MeshError && e.status === 400 && /primary/.test(e.message));
  await all('remove', oldKey);
  await new Promise((res) => setTimeout(res, 1500));
  writing = false;
  const writes = await load;
  const d1 = await Promise.all(lab.nodes.map(async (n) => (await metrics(n.name)).drops.decrypt ?? 0));
  assert.deepEqual(d1, d0, `no decrypt failures during rotation (${writes} writes under way)`);
  const keys = await agentClient(lab, 'n3').call<{ keys: Array<{ primary: boolean }> }>('GET', '/v1/gossip/keys');
  assert.equal(keys.keys.length, 1);
  for (const n of lab.nodes) assert.equal((await membership(n.name)).split(',').filter((x) => x.endsWith(':alive')).length, 4);
});
