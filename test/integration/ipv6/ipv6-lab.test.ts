/**
 * Issue #19 item 2 part 1, IPv6 dual stack on overlay networks, end to end on a 2-node lab
 * (`mv6`, netns runtime) through the real netctl and meshd:
 * - `network create --ipv6 --subnet 10.61.0.0/24 --subnet fd00:61::/64 app6`: `web` (2 tasks, one
 *   per node) gets an IPv6 address on each task; a task on one node pings the other's IPv6
 *   address across VXLAN (ND answered by the VXLAN device's proxy from the programmed neighbours);
 * - inside a task, `dig AAAA tasks.web @127.0.0.11` lists both IPv6 addresses, `dig AAAA web`
 *   answers the IPv6 VIP (part 2), and the PTR of a task's IPv6 address names it;
 * - a network without --ipv6 is as before: no IPv6 subnet, no IPv6 address, A answers unchanged;
 * - bad input is refused with a clear error (exit 2), and `--ipv6` alone picks a ULA /64.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inNs, ok, type CliResult } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { digIn, shortLines as short } from '../../helpers/task-probes.js';

const LAB = 'mv6';
const { on, m, waitRunning, waitFirst, netnsOf } = labCli(LAB);
const dig = (t: TaskJ, ...args: string[]): CliResult => digIn(netnsOf(t), ...args);

let web: TaskJ[] = [];
let old: TaskJ;

before(async () => {
  const lab = await createLab({ name: LAB, nodes: 2 });
  await joinLabCluster(lab, `/run/meshd/${LAB}/worker.token`, { json: false });
  ok(await m('network', 'create', '--ipv6', '--subnet', '10.61.0.0/24', '--subnet', 'fd00:61::/64', 'app6'), 'network create app6');
  ok(await m('network', 'create', '--subnet', '10.62.0.0/24', 'plain4'), 'network create plain4');
  ok(await m('service', 'create', '--name', 'web', '--replicas', '2', '--network', 'app6', 'whoami'), 'web');
  ok(await m('service', 'create', '--name', 'old', '--network', 'plain4', 'whoami'), 'old');
  web = await waitRunning('web', 2, 2, 60_000);
  old = await waitFirst('old', 60_000);
});
after(async () => {
  await destroyLab(LAB);
});

describe('IPv6 dual stack on overlay networks (lab mv6)', { timeout: 240_000 }, () => {
  test('each task has an IPv6 address in fd00:61::/64; one pings the other across VXLAN', async () => {
    for (const t of web) assert.match(t.addresses6?.app6 ?? '', /^fd00:61::[0-9a-f:]+$/, JSON.stringify(t));
    const [a, b] = web as [TaskJ, TaskJ];
    const v6 = b.addresses6!.app6!;
    const addr = inNs(netnsOf(a), ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    assert.match(addr.stdout, new RegExp(`${a.addresses6!.app6!}/64`), addr.stdout);
    const ping = () => inNs(netnsOf(a), ['ping', '-6', '-c', '1', '-W', '2', v6], 10_000);
    const r = await waitFor(`${a.name} on ${a.node} pings6 ${v6} (${b.name} on ${b.node})`, () => {
      const p = ping();
      return p.code === 0 ? p : undefined;
    }, 30_000, 250, () => {
      const p = ping();
      return `ping: ${p.stdout}${p.stderr}; task neighbours: ${inNs(netnsOf(a), ['ip', '-6', 'neigh']).stdout}`;
    });
    process.stdout.write(`# ${r.value.stdout.split('\n').find((l) => l.includes('time=')) ?? ''}\n`);
    // The path is the programmed one: b's IPv6 address is a permanent neighbour on a's sandbox VXLAN device.
    const netId = (JSON.parse(ok(await on('n1', 'network', 'inspect', 'app6', '--format', 'json'), 'inspect').stdout) as Array<{ id: string }>)[0]!.id;
    const neigh = inNs(`mlab-${LAB}-${a.node}-ov-${netId.slice(0, 12)}`, ['ip', '-6', 'neigh', 'show', 'nud', 'permanent']).stdout;
    assert.match(neigh, new RegExp(`^${v6} dev vx-\\d+ lladdr [0-9a-f:]{17} PERMANENT`, 'm'), neigh);
  });

  test('DNS: AAAA tasks.web lists both, AAAA web is the IPv6 VIP, PTR names the task, A unchanged', async () => {
    const t = web[0]!;
    const want6 = web.map((x) => x.addresses6!.app6!).sort();
    await waitFor('AAAA tasks.web lists both tasks', () => {
      const got = short(dig(t, '+short', 'AAAA', 'tasks.web'));
      return JSON.stringify(got) === JSON.stringify(want6) ? got : undefined;
    }, 30_000, 250, () => JSON.stringify(short(dig(t, '+short', 'AAAA', 'tasks.web'))));
    assert.deepEqual(short(dig(t, '+short', 'A', 'tasks.web')), web.map((x) => x.addresses.app6!).sort(), 'A tasks.web unchanged');
    // part 2: a vip-mode service on a dual-stack network has an IPv6 VIP (lab m6v covers it)
    const vip = short(dig(t, '+short', 'AAAA', 'web'));
    assert.equal(vip.length, 1, `AAAA web = the IPv6 VIP: ${vip.join(',')}`);
    assert.match(vip[0]!, /^fd00:61::/);
    assert.equal(short(dig(t, '+short', 'A', 'web')).length, 1, 'web still has its IPv4 VIP');
    for (const x of web) {
      assert.deepEqual(short(dig(t, '+short', '-x', x.addresses6!.app6!)), [`${x.name}.app6.`], `PTR of ${x.addresses6!.app6!}`);
      assert.deepEqual(short(dig(t, '+short', 'AAAA', x.name)), [x.addresses6!.app6!], `AAAA ${x.name}`);
    }
  });

  test('a network without --ipv6 is as before', async () => {
    const n = JSON.parse(ok(await on('n1', 'network', 'inspect', 'plain4', '--format', 'json'), 'inspect').stdout) as Array<Record<string, unknown>>;
    assert.equal(n[0]!.ipv6, false);
    assert.equal(n[0]!.subnet6, undefined);
    assert.equal(old.addresses6, undefined);
    const addr = inNs(netnsOf(old), ['ip', '-6', '-o', 'addr', 'show', 'scope', 'global']);
    assert.equal(addr.stdout.trim(), '', 'no global IPv6 address in the IPv4-only task');
    assert.deepEqual(short(dig(old, '+short', 'A', 'tasks.old')), [old.addresses.plain4!]);
    const aaaa = dig(old, 'AAAA', 'tasks.old');
    assert.match(aaaa.stdout, /status: NOERROR/, aaaa.stdout);
    assert.match(aaaa.stdout, /ANSWER: 0,/, aaaa.stdout);
  });

  test('bad input is refused with a clear error; --ipv6 alone gets a ULA /64', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--ipv6', '--subnet', 'fd00:62::/48'], /IPv6 subnet fd00:62::\/48 is larger than a \/64/],
      [['--ipv6', '--subnet', 'fd00:61::/80'], /IPv6 subnet fd00:61::\/80 overlaps fd00:61::\/64 held by app6/],
      [['--subnet', 'fd00:63::/64'], /an IPv6 subnet needs --ipv6/],
      [['--ipv6', '--subnet', 'fd00:64::/64', '--subnet', 'fd00:65::/64'], /at most one IPv4 and one IPv6 subnet/],
      [['--ipv6', '--subnet', 'fd00:66::/126'], /too small: at least a \/124/],
    ];
    for (const [flags, msg] of cases) {
      const r = await on('n1', 'network', 'create', ...flags, 'bad6');
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, msg);
    }
    ok(await on('n1', 'network', 'create', '--ipv6', 'auto6'), 'create auto6');
    const n = JSON.parse(ok(await on('n1', 'network', 'inspect', 'auto6', '--format', 'json'), 'inspect').stdout) as Array<Record<string, unknown>>;
    assert.equal(n[0]!.ipv6, true);
    assert.equal(n[0]!.subnet6, 'fd6d:6573:6864::/64');
    assert.equal(n[0]!.gateway6, 'fd6d:6573:6864::1');
  });
});
