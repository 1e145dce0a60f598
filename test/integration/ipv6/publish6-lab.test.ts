/**
 * Issue #19 item 2, last part: IPv6 published ports through the routing mesh, end to end through
 * the real netctl and meshd (netns runtime, whoami), lab `p6` (2 nodes), twice:
 * - `--underlay ipv6` (hosts have no IPv4): `curl -6 http://[node v6]:8080/` from the lab client
 *   answers on BOTH nodes and spreads over both tasks (before the fix, the node's LB sync failed:
 *   the host table named an IPv6 address in an `ip` table and nft refused the transaction);
 * - `--underlay dual`: the same over IPv6 and over IPv4 on both nodes;
 * - on both: `policy=local` over IPv6 answers from the node's own task only, without masquerade
 *   (the task's reply to the client's IPv6 address finds its way back only by the IPv6 reply rule):
 *   whoami (`GET /?remote`) prints the lab client's own IPv6 address, where the `cluster` port
 *   prints an ingress sandbox's (masqueraded).
 * The path: host `ip6 meshd-ingress` DNAT → ingress sandbox (fd6d:6573:6864:fffe::2) → `ip6
 * meshd-lb6` ingress6 frontend → a task's derived IPv6 ingress address over the ingress VXLAN.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { inNs, netctl, type CliResult } from '../../helpers/cli.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { CLIENT_ADDR6, nodeAddr6, type LabUnderlay } from '../../../src/lab/plan.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'p6';
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args], { timeoutMs: 120_000 });
function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  return r;
}
const url = (addr: string): string => (addr.includes(':') ? `http://[${addr}]:8080/` : `http://${addr}:8080/`);

/** One request from the lab client: the answering task's name, or the failure text. */
function ask(lab: LabState, addr: string): { task?: string; out: string } {
  const r = inNs(lab.client.netns, ['curl', '-s', '-m', '2', addr.includes(':') ? '-6' : '-4', url(addr)], 5000);
  const task = /^task: (\S+)$/m.exec(r.stdout)?.[1];
  return { ...(task ? { task } : {}), out: `exit ${r.code} ${r.stdout}${r.stderr}`.trim() };
}

/** What a failed wait prints: the node's host table, its sandbox's IPv6 LB and the LB status. */
function diagnose(lab: LabState, node: string): string {
  const ns = `mlab-${LAB}-${node}`;
  return [
    `host ip6 table: ${inNs(ns, ['nft', 'list', 'table', 'ip6', 'meshd-ingress']).stdout || '(none)'}`,
    `sandbox lb6: ${inNs(`${ns}-ingress`, ['nft', 'list', 'table', 'ip6', 'meshd-lb6']).stdout || '(none)'}`,
    `sandbox addrs: ${inNs(`${ns}-ingress`, ['ip', '-6', '-o', 'addr']).stdout}`,
  ].join('\n').slice(0, 4000) + `\nlab ${lab.name}`;
}

async function cluster(lab: LabState): Promise<void> {
  ok(await on('n1', 'cluster', 'init'), 'init');
  const token = ok(await on('n1', 'cluster', 'join-token', 'worker', '-q'), 'token').stdout.trim();
  writeFileSync(`/run/meshd/${LAB}/worker.token`, token + '\n', { mode: 0o600 });
  const mgr = lab.nodes[0]!.underlay;
  ok(await on('n2', 'cluster', 'join', '--token-file', `/run/meshd/${LAB}/worker.token`, `${mgr.includes(':') ? `[${mgr}]` : mgr}:2377`), 'join');
  ok(await on('n1', 'network', 'create', 'app'), 'network create app');
  ok(await on('n1', 'service', 'create', '--name', 'web', '--replicas', '2', '--network', 'app', '-p', '8080:80', 'whoami'), 'web');
  ok(await on('n1', 'service', 'create', '--name', 'loc', '--mode', 'global', '--network', 'app', '--publish', 'published=8081,target=80,policy=local', 'whoami'), 'loc');
}

/** Waits until `addr` answers, then asks until ≥ 2 distinct tasks answered (bounded). */
async function spreads(lab: LabState, node: string, addr: string): Promise<string[]> {
  const seen = new Set<string>();
  let last = '';
  await waitFor(`${url(addr)} (${node}) answers from 2 distinct tasks`, () => {
    const a = ask(lab, addr);
    last = a.out;
    if (a.task) seen.add(a.task);
    return seen.size >= 2 ? [...seen] : undefined;
  }, 60_000, 100, () => `seen ${[...seen].join(',') || '(none)'}; last: ${last}\n${diagnose(lab, node)}`);
  return [...seen].sort();
}

for (const underlay of ['ipv6', 'dual'] as LabUnderlay[]) {
  describe(`IPv6 published ports, ${underlay} underlay (lab ${LAB})`, { timeout: 300_000 }, () => {
    let lab: LabState;
    before(async () => {
      lab = await createLab({ name: LAB, nodes: 2, underlay });
      await cluster(lab);
    });
    after(async () => {
      await destroyLab(LAB);
    });

    test('curl -6 to every node\'s IPv6 underlay address answers and spreads over both tasks', async () => {
      for (const n of lab.nodes) {
        const addr = nodeAddr6(n.index);
        const tasks = await spreads(lab, n.name, addr);
        process.stdout.write(`# ${underlay}: [${addr}]:8080 on ${n.name} → ${tasks.join(', ')}\n`);
        assert.equal(tasks.length, 2);
      }
    });

    test('policy=local over IPv6: each node answers from its own task (replies routed back unmasqueraded)', async () => {
      for (const n of lab.nodes) {
        const addr = nodeAddr6(n.index);
        let last = '';
        const r = await waitFor(`[${addr}]:8081 (${n.name}, policy local) answers`, () => {
          const x = inNs(lab.client.netns, ['curl', '-s', '-m', '2', '-6', `http://[${addr}]:8081/`], 5000);
          last = `exit ${x.code} ${x.stdout}${x.stderr}`;
          return x.code === 0 && x.stdout.includes('task: loc.') ? x.stdout : undefined;
        }, 60_000, 100, () => `last: ${last}\n${diagnose(lab, n.name)}`);
        assert.match(r.value, new RegExp(`^node: ${n.name}$`, 'm'));
        for (let i = 0; i < 5; i++) {
          const x = inNs(lab.client.netns, ['curl', '-s', '-m', '2', '-6', `http://[${addr}]:8081/`], 5000);
          assert.match(x.stdout, new RegExp(`^node: ${n.name}$`, 'm'), `${n.name}: ${x.stdout}${x.stderr}`);
        }
        const lb6 = inNs(`mlab-${LAB}-${n.name}-ingress`, ['nft', 'list', 'table', 'ip6', 'meshd-lb6']).stdout;
        assert.match(lb6, / tcp\/8081 local ipv6"/, `${n.name}: the policy-local IPv6 frontend`);
        // the client's real IPv6 address reaches the task (issue 19 §6 over IPv6); the cluster port's task
        // sees an ingress sandbox's IPv6 ingress address instead (masqueraded)
        const loc = inNs(lab.client.netns, ['curl', '-s', '-m', '2', '-6', `http://[${addr}]:8081/?remote`], 5000);
        assert.match(loc.stdout, new RegExp(`^remote: ${CLIENT_ADDR6}$`, 'm'), `${n.name}: policy local over IPv6 keeps the client's address: ${loc.stdout}${loc.stderr}`);
        const cl = inNs(lab.client.netns, ['curl', '-s', '-m', '2', '-6', `http://[${addr}]:8080/?remote`], 5000);
        assert.match(cl.stdout, /^remote: fd6d:6573:6864:ff00::/m, `${n.name}: policy cluster over IPv6 masquerades: ${cl.stdout}${cl.stderr}`);
        process.stdout.write(`# ${underlay}: ${n.name} policy local → ${/^remote: (.*)$/m.exec(loc.stdout)?.[1]}, cluster → ${/^remote: (.*)$/m.exec(cl.stdout)?.[1]}\n`);
      }
    });

    test('the kernel read-back holds the IPv6 published ports: no drift in any namespace, none resynced on its own', async () => {
      type Status = { namespaces: Array<{ netns?: string; drift: string[]; error?: string; frontends?: Array<{ key: string }> }>; stats: { driftResyncs: number; lastDrift: string[] } };
      for (const n of lab.nodes) {
        const s = await agentClient(lab, n.name).call<Status>('GET', '/v1/lb/status');
        const bad = s.namespaces.filter((x) => x.drift.length > 0 || x.error);
        assert.deepEqual(bad, [], `${n.name}: namespaces with drift`);
        assert.equal(s.stats.driftResyncs, 0, `${n.name} resynced on drift: ${s.stats.lastDrift.join(' ')}`);
      }
    });

    if (underlay === 'dual') {
      test('IPv4 still answers on every node (dual: both families)', async () => {
        for (const n of lab.nodes) {
          const tasks = await spreads(lab, n.name, n.underlay);
          process.stdout.write(`# dual: ${n.underlay}:8080 on ${n.name} → ${tasks.join(', ')}\n`);
          assert.ok(!n.underlay.includes(':'));
        }
      });
    }
  });
}
