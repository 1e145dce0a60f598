/**
 * Issue #19 item 2 part 2b, an IPv6-only underlay, end to end on a 2-node lab (`u6`,
 * `underlay: 'ipv6'`: hosts have only fd99:6c61:6200::/64 addresses, no IPv4 at all) through the
 * real netctl and meshd:
 * - the cluster forms over IPv6 (join by [v6]:2377, gossip on [v6]:7946) and both nodes are ready;
 * - the VXLAN devices have an IPv6 `local`, remote FDB entries an IPv6 `dst`, the overlay MTU is
 *   the underlay's minus 70;
 * - tasks of a service on an --ipv6 overlay network reach each other across nodes over IPv4 and
 *   IPv6 inside the overlay, carried by VXLAN over IPv6;
 * - the VXLAN guard holds the peer's IPv6 address in `members6`, and a crafted VXLAN packet from a
 *   non-member (the lab client) over IPv6 is counted and dropped, never reaching the sandbox;
 * - a docker-runtime task on the --ipv6 network gets its IPv6 address in its sandbox.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inNs, ok } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { ensureDockerd, ensureImages, IMAGES } from '../../helpers/docker.js';
import { removeLabContainers } from '../../helpers/docker-lab.js';
import { parseGuard } from '../../../src/adapters/firewall/vxlan-guard.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'u6';
const { on, m, running: tasks, waitRunning, netnsOf } = labCli(LAB);
const guardOf = (node: string) => {
  const r = inNs(`mlab-${LAB}-${node}`, ['nft', '-j', 'list', 'table', 'inet', 'meshd-vxlan']);
  assert.equal(r.code, 0, `guard of ${node}: ${r.stderr}`);
  return parseGuard(r.stdout);
};

let lab: LabState;
let web: TaskJ[] = [];
let netId = '';
let docker = false;

before(async () => {
  docker = await ensureDockerd();
  if (docker) await ensureImages();
  lab = await createLab({ name: LAB, nodes: 2, underlay: 'ipv6' });
  // n2 joins n1 at [its IPv6 underlay address]:2377
  await joinLabCluster(lab, `/run/meshd/${LAB}/worker.token`, { json: false });
  ok(await m('network', 'create', '--ipv6', '--subnet', '10.63.0.0/24', '--subnet', 'fd00:63::/64', 'app6'), 'network create app6');
  netId = (JSON.parse(ok(await m('network', 'inspect', 'app6', '--format', 'json'), 'inspect').stdout) as Array<{ id: string }>)[0]!.id;
  ok(await m('service', 'create', '--name', 'web', '--replicas', '2', '--network', 'app6', 'whoami'), 'web');
  web = await waitRunning('web', 2, 2, 60_000);
});
after(async () => {
  await destroyLab(LAB);
  if (docker) removeLabContainers(LAB);
});

describe('IPv6-only underlay (lab u6)', { timeout: 300_000 }, () => {
  test('hosts have no IPv4; the cluster formed over IPv6; gossip members are [v6]:7946', async () => {
    for (const n of lab.nodes) {
      assert.match(n.underlay, /^fd99:6c61:6200::[0-9a-f]+$/);
      assert.equal(inNs(n.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout.trim(), '', `${n.name} has no IPv4 underlay`);
    }
    const nodes = JSON.parse(ok(await on('n1', 'node', 'ls', '--format', 'json'), 'node ls').stdout) as Array<{ hostname: string; state: string; addr?: string; managerAddr?: string }>;
    assert.equal(nodes.length, 2, JSON.stringify(nodes));
    assert.ok(nodes.every((n) => n.state === 'ready'), JSON.stringify(nodes));
    assert.deepEqual(nodes.map((n) => n.addr).sort(), lab.nodes.map((n) => n.underlay).sort());
    assert.equal(nodes.find((n) => n.hostname === 'n1')?.managerAddr, `[${lab.nodes[0]!.underlay}]:2377`);
    const members = JSON.parse(ok(await on('n2', 'debug', 'members', '--format', 'json'), 'debug members').stdout) as Array<{ name: string; addr: string; state: string }>;
    const addrs = members.map((m) => `${m.name}=${m.addr}/${m.state}`).sort();
    assert.deepEqual(addrs, [`n1=[${lab.nodes[0]!.underlay}]:7946/alive`, `n2=[${lab.nodes[1]!.underlay}]:7946/alive`]);
  });

  test('VXLAN over IPv6: local and FDB dst are IPv6, overlay MTU = 1500 − 70; tasks reach each other (IPv4 and IPv6 inside)', async () => {
    const [a, b] = web as [TaskJ, TaskJ];
    const sb = `mlab-${LAB}-${a.node}-ov-${netId.slice(0, 12)}`;
    const link = JSON.parse(inNs(sb, ['ip', '-d', '-j', 'link', 'show', 'type', 'vxlan']).stdout || '[]') as Array<{ mtu: number; linkinfo: { info_data: { local6?: string } } }>;
    assert.equal(link.length, 1, JSON.stringify(link));
    const self = lab.nodes.find((n) => n.name === a.node)!.underlay;
    const peer = lab.nodes.find((n) => n.name === b.node)!.underlay;
    assert.equal(link[0]!.linkinfo.info_data.local6, self);
    assert.equal(link[0]!.mtu, 1430);
    assert.match(inNs(netnsOf(a), ['ip', '-o', 'link', 'show', 'dev', 'eth0']).stdout, /mtu 1430 /);
    const fdb = await waitFor(`${a.node}'s sandbox FDB has ${b.name}'s MAC at dst ${peer}`, () => {
      const out = inNs(sb, ['bridge', 'fdb', 'show']).stdout;
      return out.includes(`dst ${peer}`) ? out : undefined;
    }, 30_000, 250, () => inNs(sb, ['bridge', 'fdb', 'show']).stdout);
    assert.ok(fdb.value.length > 0);
    for (const [family, dst] of [['-4', b.addresses.app6!], ['-6', b.addresses6!.app6!]] as const) {
      const ping = () => inNs(netnsOf(a), ['ping', family, '-c', '1', '-W', '2', dst], 10_000);
      const r = await waitFor(`${a.name} on ${a.node} pings ${family} ${dst} (${b.name} on ${b.node}) across VXLAN over IPv6`, () => {
        const p = ping();
        return p.code === 0 ? p : undefined;
      }, 30_000, 250, () => {
        const p = ping();
        return `ping: ${p.stdout}${p.stderr}; sandbox fdb: ${inNs(sb, ['bridge', 'fdb', 'show']).stdout}; guard: ${JSON.stringify(guardOf(b.node!))}`;
      });
      process.stdout.write(`# ping ${family}: ${r.value.stdout.split('\n').find((l) => l.includes('time=')) ?? ''}\n`);
    }
  });

  test('the VXLAN guard: peers in members6; a non-member\'s VXLAN packet over IPv6 is counted and dropped', async () => {
    const target = lab.nodes[0]!;
    const g = await waitFor('n1\'s guard allows n2\'s IPv6 address', () => {
      const s = guardOf('n1');
      return s.ipv6 && s.allow.includes(lab.nodes[1]!.underlay) ? s : undefined;
    }, 30_000, 250, () => JSON.stringify(guardOf('n1')));
    assert.deepEqual(g.value.allow, [lab.nodes[1]!.underlay]);
    const vni = (JSON.parse(ok(await on('n1', 'network', 'inspect', 'app6', '--format', 'json'), 'inspect').stdout) as Array<{ vni: number }>)[0]!.vni;
    const sb = `mlab-${LAB}-n1-ov-${netId.slice(0, 12)}`;
    const mac = '02:99:00:00:06:01';
    const js = `const d=require('dgram').createSocket('udp6');const v=Buffer.from([8,0,0,0,${vni >> 16},${(vni >> 8) & 255},${vni & 255},0]);` +
      `const m=Buffer.from('${mac.replace(/:/g, '')}','hex');const e=Buffer.concat([Buffer.alloc(6,255),m,Buffer.from([8,6]),Buffer.alloc(46)]);` +
      `let n=0;const s=()=>d.send(Buffer.concat([v,e]),4789,'${target.underlay}',()=>{if(++n<5)s();else d.close();});s();`;
    const before = guardOf('n1').droppedPackets;
    const sent = inNs(lab.client.netns, ['node', '-e', js]);
    assert.equal(sent.code, 0, sent.stderr);
    const after = await waitFor('n1\'s guard counter rose by 5', () => {
      const d = guardOf('n1').droppedPackets - before;
      return d >= 5 ? d : undefined;
    }, 5000, 100, () => `dropped ${guardOf('n1').droppedPackets - before}`);
    process.stdout.write(`# guard dropped ${after.value} packets from the non-member ${lab.client.underlay}\n`);
    assert.equal(inNs(sb, ['bridge', 'fdb', 'show', 'br', 'br0']).stdout.includes(mac), false, 'the rogue frame never reached the sandbox bridge');
  });

  test('docker runtime: a task on the --ipv6 network gets its IPv6 address in its sandbox', { skip: false }, async () => {
    assert.ok(docker, 'Debian docker.io is installed and dockerd answers');
    await waitFor('n1 reports the docker runtime', async () => {
      const nodes = JSON.parse(ok(await on('n1', 'node', 'ls', '--format', 'json'), 'node ls').stdout) as Array<{ hostname: string; runtimes?: string[] }>;
      return nodes.find((n) => n.hostname === 'n1')?.runtimes?.includes('docker') ? nodes : undefined;
    }, 30_000, 250);
    ok(await on('n1', 'service', 'create', '--detach', '--name', 'bb', '--network', 'app6', '--constraint', 'node.hostname==n1', IMAGES.busybox, 'sleep', '3600'), 'bb');
    const t = (await waitFor('bb has a running task', async () => (await tasks('bb'))[0], 120_000, 250,
      async () => (await on('n1', 'service', 'ps', 'bb', '--format', 'json')).stdout.slice(0, 1500))).value;
    const v6 = t.addresses6?.app6;
    assert.match(v6 ?? '', /^fd00:63::[0-9a-f:]+$/, JSON.stringify(t));
    const addr = inNs(netnsOf(t), ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    assert.match(addr.stdout, new RegExp(`${v6}/64`), `${addr.stdout}${addr.stderr}`);
    const w = web.find((x) => x.node === 'n2')!;
    const ping = () => inNs(netnsOf(t), ['ping', '-6', '-c', '1', '-W', '2', w.addresses6!.app6!], 10_000);
    await waitFor(`the docker task pings6 ${w.name} on n2`, () => (ping().code === 0 ? true : undefined), 30_000, 250, () => {
      const p = ping();
      return `${p.stdout}${p.stderr}; sysctl disable_ipv6: ${inNs(netnsOf(t), ['sysctl', '-n', 'net.ipv6.conf.eth0.disable_ipv6']).stdout}`;
    });
  });
});
