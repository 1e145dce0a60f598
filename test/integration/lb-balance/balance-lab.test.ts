/**
 * Balancing choices through a real 2-node lab (`mbal`, issue 19 §3 and the dnsrr part of §4), netns
 * runtime (`whoami` answers `task: NAME`), the real netctl and meshd, nftables dataplane:
 * - `--lb-algorithm source-hash`: one client address stays on one task across 100 connections, and
 *   100 client addresses (added to the lab client's underlay interface) spread over the 3 tasks;
 * - `--lb-locality node` on a global service: each node's published port answers from its own task
 *   while that task is healthy; after `node update --availability drain n1` n1 spills to n2's task;
 * - `--endpoint-mode dnsrr` with `-p`: the published port answers on every node (swarmkit#1693).
 * All requests run inside the lab's client namespace, one shell loop per batch (no process per request).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, ok } from '../../helpers/cli.js';
import { labCli } from '../../helpers/lab-cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'mbal';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-mbal-'));
let lab: LabState;
const { on, m, json, running } = labCli(LAB, 150_000);

/**
 * `n` requests to `url` from the client namespace, each from source address `from[i % from.length]`
 * (or the client's own), one shell loop; returns the task name that answered each (or `-`).
 */
function ask(url: string, n: number, from: string[] = []): string[] {
  const src = from.length ? from.join(' ') : '';
  const script = from.length
    ? `i=0; set -- ${src}; for a in $(seq ${n}); do eval s=\\\${$(( i % $# + 1 ))}; i=$((i+1)); curl -s -m 2 --interface $s ${url} | sed -n 's/^task: //p' | grep . || echo -; done`
    : `for a in $(seq ${n}); do curl -s -m 2 ${url} | sed -n 's/^task: //p' | grep . || echo -; done`;
  const r = inNs(lab.client.netns, ['sh', '-c', script], 120_000);
  return r.stdout.trim().split('\n');
}
const counts = (xs: string[]): Map<string, number> => {
  const c = new Map<string, number>();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return c;
};
const show = (c: Map<string, number>): string => JSON.stringify(Object.fromEntries(c));

describe('balancing choices (lab mbal)', { timeout: 400_000 }, () => {
  let ips: string[] = [];
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 2 });
    await joinLabCluster(lab, join(tmp, 'worker.token'), { waitReady: true });
    ips = lab.nodes.map((n) => n.underlay);
    // 100 more client addresses on the underlay (the lab's /16), for source-hash spreading
    const extra = Array.from({ length: 100 }, (_, i) => `10.99.200.${i + 1}`);
    const add = inNs(lab.client.netns, ['sh', '-c', extra.map((a) => `ip addr add ${a}/16 dev eth0`).join(' && ')], 30_000);
    assert.equal(add.code, 0, `client addresses: ${add.stderr}`);
    const [a, b, c] = await Promise.all([
      m('service', 'create', '--name', 'sh', '--replicas', '3', '-p', '8090:80', '--lb-algorithm', 'source-hash', '--runtime', 'netns', 'whoami'),
      m('service', 'create', '--name', 'loc', '--mode', 'global', '-p', '8091:80', '--lb-locality', 'node', '--runtime', 'netns', 'whoami'),
      m('service', 'create', '--name', 'rr', '--replicas', '2', '--endpoint-mode', 'dnsrr', '-p', '8092:80', '--runtime', 'netns', 'whoami'),
    ]);
    ok(a, 'create sh');
    ok(b, 'create loc');
    ok(c, 'create rr');
  });
  after(async () => {
    await destroyLab(LAB);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('source-hash: one client stays on one task across 100 connections; 100 clients spread over the 3 tasks', async () => {
    const tasks = new Set((await running('sh')).map((t) => t.name));
    assert.equal(tasks.size, 3, 'three sh tasks running');
    // every task answering through EACH node first (its LB has all three), then the measurement: a
    // wait on n1 alone let the n2 measurement meet n2's LB still programming (2 of 100 unanswered)
    for (const ip of ips) {
      await waitFor(`3 sh tasks behind ${ip}:8090`, () => {
        const got = counts(ask(`http://${ip}:8090/`, 30, Array.from({ length: 30 }, (_, i) => `10.99.200.${i + 1}`)));
        return got.size === 3 && !got.has('-') ? got : false;
      }, 60_000, 500, () => show(counts(ask(`http://${ip}:8090/`, 10))));
    }
    for (const ip of ips) {
      const one = counts(ask(`http://${ip}:8090/`, 100));
      assert.equal(one.size, 1, `one client through ${ip}: ${show(one)}`);
      assert.ok(tasks.has([...one.keys()][0]!), `answered by a sh task: ${show(one)}`);
    }
    const spread = counts(ask(`http://${ips[0]}:8090/`, 100, Array.from({ length: 100 }, (_, i) => `10.99.200.${i + 1}`)));
    assert.equal(spread.size, 3, `100 clients reach all 3 tasks: ${show(spread)}`);
    for (const [t, k] of spread) assert.ok(k >= 10, `${t} got ${k} of 100 clients: ${show(spread)}`);
    // the same client on the other node lands on the same task (fixed jhash seed, same target order)
    const a = ask(`http://${ips[0]}:8090/`, 20, Array.from({ length: 20 }, (_, i) => `10.99.200.${i + 1}`));
    const b = ask(`http://${ips[1]}:8090/`, 20, Array.from({ length: 20 }, (_, i) => `10.99.200.${i + 1}`));
    assert.deepEqual(b, a, 'a client address maps to the same task through either node');
  });

  test('locality node: each node answers from its own task while healthy; drained, n1 spills to n2', async () => {
    const byNode = new Map((await waitFor('a loc task on each node', async () => {
      const ts = await running('loc');
      return ts.length === 2 && new Set(ts.map((t) => t.node)).size === 2 ? ts : false;
    }, 60_000, 500)).value.map((t) => [t.node!, t.name]));
    for (const [i, node] of lab.nodes.map((n) => n.name).entries()) {
      await waitFor(`${node}:8091 answered only by ${byNode.get(node)}`, () => {
        const c = counts(ask(`http://${ips[i]}:8091/`, 20));
        return c.size === 1 && c.has(byNode.get(node)!) ? c : false;
      }, 30_000, 500, () => show(counts(ask(`http://${ips[i]}:8091/`, 20))));
    }
    ok(await m('node', 'update', '--availability', 'drain', 'n1'), 'drain n1');
    await waitFor(`n1:8091 spills to n2's task ${byNode.get('n2')}`, () => {
      const c = counts(ask(`http://${ips[0]}:8091/`, 20));
      return c.size === 1 && c.has(byNode.get('n2')!) ? c : false;
    }, 60_000, 500, () => show(counts(ask(`http://${ips[0]}:8091/`, 20))));
    ok(await m('node', 'update', '--availability', 'active', 'n1'), 'activate n1');
  });

  test('dnsrr with a published port answers on every node', async () => {
    const tasks = await waitFor('2 rr tasks', async () => {
      const ts = await running('rr');
      return ts.length === 2 ? ts : false;
    }, 60_000, 500);
    const names = new Set(tasks.value.map((t) => t.name));
    for (const ip of ips) {
      const c = (await waitFor(`${ip}:8092 answers (dnsrr)`, () => {
        const got = counts(ask(`http://${ip}:8092/`, 20));
        return [...got.keys()].every((k) => names.has(k)) ? got : false;
      }, 30_000, 500, () => show(counts(ask(`http://${ip}:8092/`, 5))))).value;
      assert.ok(c.size >= 1, `${ip}: ${show(c)}`);
    }
  });
});
