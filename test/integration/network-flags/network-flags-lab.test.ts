/**
 * Issue 15's network rows end to end on a 2-node lab (`mnet`, netns runtime: the attach path
 * is shared with docker, src/adapters/runtime/attach.ts), through the real netctl and meshd:
 * - `--ip-range` + `--aux-address`: every task address and the VIP come from the range, never
 *   the aux address;
 * - `--internal`: stored and shown; publishing a port on it is refused (MESHD_UNSUPPORTED);
 * - `--label`: shown by inspect, `network ls --filter label=k[=v]` selects by it;
 * - `-d macvlan -o parent=eth0` (seed 000's command, the lab node's underlay interface as
 *   parent): a global service's tasks on both nodes reach each other by address over the
 *   underlay switch and by DNS name (dnsrr-like: the name resolves to the task addresses);
 *   addresses from its ip-range, never its aux address; `-p` on it is refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, ok, type CliResult } from '../../helpers/cli.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import { cidrContains, parseCidr, parseIp } from '../../../src/core/ipam/addr.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'mnet';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-mnet-'));
let lab: LabState;
const { on, m, running, netnsOf } = labCli(LAB);
/**
 * netctl prints the message and exits with the kind's code: MESHD_BAD_ARGUMENT and
 * MESHD_UNSUPPORTED are both BadRequest (exit 2); the unit tests pin the codes themselves.
 */
function refused(r: CliResult, code: 'MESHD_BAD_ARGUMENT' | 'MESHD_UNSUPPORTED', re: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what} must be refused (${code}, exit 2): exit ${r.code} ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, re, what);
}
/** What the kernel holds for a task's macvlan side and its node's parent: printed when a reach fails. */
function macvlanDiag(tasks: readonly TaskJ[]): string {
  return tasks.map((t) => {
    const ns = netnsOf(t);
    const run = (n: string, argv: string[]) => { const r = inNs(n, argv, 5000); return `${r.stdout}${r.stderr}`.trim(); };
    return [`--- ${t.name} on ${t.node} (${ns})`, run(ns, ['ip', '-br', 'addr']), run(ns, ['ip', 'neigh']), run(ns, ['ip', 'route']),
      `host ${t.node}:`, run(`mlab-${LAB}-${t.node}`, ['ip', '-br', 'link', 'show', 'eth0'])].join('\n');
  }).join('\n');
}
const inRange = (ip: string, cidr: string) => cidrContains(parseCidr(cidr), parseIp(ip));

before(async () => {
  lab = await createLab({ name: LAB, nodes: 2 });
  await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, waitReady: true, readyTimeoutMs: 30_000 });
});
after(async () => {
  if (process.env.MNET_KEEP_LAB) return;
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('network create flags (lab, netns runtime)', { timeout: 300_000 }, () => {
  test('overlay --ip-range/--aux-address/--internal/--label: addresses from the range only, -p refused, labels shown and filtered', async () => {
    ok(await m('network', 'create', '--subnet', '10.77.0.0/24', '--ip-range', '10.77.0.16/29', '--aux-address', 'keep=10.77.0.18',
      '--internal', '--label', 'env=lab', '--label', 'tier', 'rng'), 'create rng');
    ok(await m('network', 'create', '--label', 'env=prod', 'other'), 'create other');
    ok(await m('network', 'create', 'plain'), 'create plain');
    assert.equal(ok(await m('network', 'inspect', 'rng', '--format', '{{.ipRange}} {{json .auxAddresses}} {{.internal}} {{.labels.env}} {{json .labels}}'), 'inspect').stdout.trim(),
      '10.77.0.16/29 {"keep":"10.77.0.18"} true lab {"env":"lab","tier":""}');
    const names = async (...f: string[]) => ok(await m('network', 'ls', ...f.flatMap((x) => ['--filter', x]), '--format', '{{.name}}'), `ls ${f.join(' ')}`).stdout.trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(await names('label=env'), ['other', 'rng']);
    assert.deepEqual(await names('label=env=lab'), ['rng']);
    assert.deepEqual(await names('label=tier', 'label=env=prod'), []);
    refused(await m('network', 'ls', '--filter', 'colour=red'), 'MESHD_BAD_ARGUMENT', /invalid filter key/, 'unknown filter');
    // 5 tasks + the VIP = 6 of the range's 7 assignable addresses (.16-.23 minus aux .18).
    ok(await m('service', 'create', '--name', 'ranged', '--replicas', '5', '--network', 'rng', '--timeout', '90s', 'whoami'), 'create ranged');
    const tasks = await running('ranged');
    assert.equal(tasks.length, 5, JSON.stringify(tasks));
    const vip = ok(await m('service', 'inspect', 'ranged', '--format', '{{.vips.rng}}'), 'vip').stdout.trim();
    const addrs = [...tasks.map((t) => t.addresses.rng!), vip];
    assert.equal(new Set(addrs).size, 6, `distinct: ${addrs.join(' ')}`);
    for (const ip of addrs) {
      assert.ok(inRange(ip, '10.77.0.16/29'), `${ip} is inside the ip-range (all: ${addrs.join(' ')})`);
      assert.notEqual(ip, '10.77.0.18', 'never the aux address');
    }
    refused(await m('service', 'create', '--name', 'pub', '--network', 'rng', '-p', '8080:80', 'whoami'), 'MESHD_UNSUPPORTED', /network rng is internal/, '-p on internal');
    refused(await m('network', 'create', '--subnet', '10.78.0.0/24', '--ip-range', '10.79.0.0/25', 'bad'), 'MESHD_BAD_ARGUMENT', /not inside subnet/, 'range outside');
    refused(await m('network', 'create', '-o', 'encrypted=1', 'enc'), 'MESHD_UNSUPPORTED', /overlay driver option "encrypted"/, 'overlay -o');
    ok(await m('service', 'rm', 'ranged'), 'rm ranged');
  });

  test('macvlan on the underlay interface: tasks on two nodes reach each other by address and by name', async () => {
    ok(await m('network', 'create', '-d', 'macvlan', '--subnet', '10.88.0.0/16', '--ip-range', '10.88.41.0/29', '--aux-address', 'fav=10.88.41.2',
      '--gateway', '10.88.41.1', '-o', 'parent=eth0', 'lan'), 'create lan');
    const row = ok(await m('network', 'ls', '--filter', 'driver=macvlan'), 'ls macvlan').stdout;
    assert.match(row, /lan\s+macvlan\s+swarm\s+10\.88\.0\.0\/16\s+10\.88\.41\.1\s+-/);
    refused(await m('network', 'create', '-d', 'macvlan', '--subnet', '10.89.0.0/24', 'noparent'), 'MESHD_BAD_ARGUMENT', /needs -o parent=IFACE/, 'no parent');
    refused(await m('service', 'create', '--name', 'mvpub', '--network', 'lan', '-p', '8081:80', 'whoami'), 'MESHD_UNSUPPORTED', /publishing ports on macvlan network lan/, '-p on macvlan');
    ok(await m('service', 'create', '--name', 'mv', '--mode', 'global', '--network', 'lan', '--timeout', '90s', 'whoami'), 'create mv');
    const { value: tasks } = await waitFor('a running mv task on each node', async () => {
      const r = await running('mv');
      return r.length === 2 && new Set(r.map((t) => t.node)).size === 2 && r;
    }, 30_000, 250);
    const ips = tasks.map((t) => t.addresses.lan!);
    assert.equal(ok(await m('service', 'inspect', 'mv', '--format', '{{json .vips}}'), 'vips').stdout.trim(), '{}', 'no VIP on macvlan');
    for (const ip of ips) {
      assert.ok(inRange(ip, '10.88.41.0/29') && ip !== '10.88.41.2', `${ip}: from the ip-range, not the aux address`);
    }
    const [a, b] = tasks;
    // By address, across the underlay switch: n1's task asks n2's task's whoami.
    const r = await on(a!.node!, 'exec', a!.name, '--', 'curl', '-s', '-m', '3', `http://${b!.addresses.lan}/`);
    assert.equal(r.code, 0, `curl by ip from ${a!.name} to ${b!.addresses.lan}: exit ${r.code} ${r.stderr}\n${macvlanDiag(tasks)}`);
    const byIp = r.stdout;
    assert.ok(byIp.includes(`ip: ${b!.addresses.lan}`), `answer from ${b!.name}: ${byIp}`);
    // By name: `mv` resolves to both task addresses (no VIP), from either side.
    for (const t of [a!, b!]) {
      const got = await waitFor(`mv resolves to ${ips.join(', ')} in ${t.name}`, async () => {
        const r = await on(t.node!, 'exec', t.name, '--', 'getent', 'ahostsv4', 'mv');
        const found = [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0]).filter(Boolean))].sort();
        return found.join(',') === [...ips].sort().join(',') ? found : false;
      }, 10_000, 200);
      assert.equal(got.value.length, 2);
    }
    const byName = ok(await on(b!.node!, 'exec', b!.name, '--', 'curl', '-s', '-m', '3', 'http://mv/'), 'curl by name').stdout;
    assert.ok(ips.some((ip) => byName.includes(`ip: ${ip}`)), `a whoami answer by name over the macvlan: ${byName}`);
    ok(await m('service', 'rm', 'mv'), 'rm mv');
  });
});
