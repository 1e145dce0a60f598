/**
 * IPv6 VIPs (issue #19 item 2 part 2), layer by layer: the manager's IPv6 VIP (allocated on a
 * dual-stack network only, stored with the service, re-claimed on load, released on remove), the
 * assignment and endpoint record (`vip6`, optional: old records decode as before), DNS (AAAA and
 * PTR of the VIP), the LB model (IPv6 frontends over the backends' IPv6 addresses), the nftables
 * renderer (an `ip6 meshd-lb6` table in the same transaction; golden), the IPVS renderer
 * (`-A -t [v6]:port` address services; golden), and the policy (IPv6 filtered like IPv4).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import { ControlState } from '../../../src/manager/control/state.js';
import { ipamRequestOf } from '../../../src/manager/control/network-model.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../../src/manager/control/model.js';
import { endpointRecord, validateAssignments } from '../../../src/agent/worker/plan.js';
import { decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../../src/core/endpoints.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { QCLASS, QTYPE, resolve } from '../../../src/core/dns/resolver.js';
import { reverseName6 } from '../../../src/core/ipam/addr6.js';
import { compile, type LbDesired, type VipService } from '../../../src/core/lb/model.js';
import { planNftFull, renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { renderIpvsFull, renderIpvsIncremental } from '../../../src/core/lb/ipvs-render.js';
import { expectedKernel } from '../../../src/core/lb/kernel.js';
import { vipServiceOf } from '../../../src/agent/lb/plan.js';
import { desiredPolicy, verdict } from '../../../src/core/policy/desired.js';
import { IPVS6_NAT, NFT6_FULL_TAIL } from '../lb/golden.js';
import { renderDelta, renderFull } from '../../../src/core/policy/render.js';

const net6: NetworkRecord = {
  id: 'n6', name: 'app6', driver: 'overlay', subnet: '10.61.0.0/24', gateway: '10.61.0.1', subnet6: 'fd00:61::/64', gateway6: 'fd00:61::1',
  vni: 4100, attachable: false, ingress: false, createdAt: 0,
};
const net4: NetworkRecord = { id: 'n4', name: 'plain', driver: 'overlay', subnet: '10.62.0.0/24', gateway: '10.62.0.1', vni: 4101, attachable: false, ingress: false, createdAt: 0 };

function state(): ControlState {
  const st = new ControlState();
  for (const n of [net6, net4]) {
    st.ipam.create(ipamRequestOf(n));
    st.networks.set(n.id, n);
  }
  return st;
}

describe('manager: IPv6 VIPs', () => {
  const spec = parseServiceSpec({ name: 'web', image: 'nginx', networks: ['app6', 'plain'] });
  test('one on the dual-stack network only, carried into the assignment and the endpoint record', () => {
    const st = state();
    const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: {}, createdAt: 0, updatedAt: 0 };
    st.assignVips(svc, svc, ['n6', 'n4']);
    assert.deepEqual(svc.vips, { n6: '10.61.0.2', n4: '10.62.0.2' });
    assert.deepEqual(svc.vips6, { n6: 'fd00:61::2' });
    const task = {
      id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
      state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: {},
    } as unknown as TaskRecord;
    const t = { ...task, ...st.allocateTask(task, ['n6', 'n4']) };
    const a = assignmentFor(t, svc, new Map([['app6', net6], ['plain', net4]]))!;
    validateAssignments([a]);
    const [a6, a4] = a.attachments;
    assert.equal(a6!.vip6, 'fd00:61::2');
    assert.equal('vip6' in a4!, false, 'IPv4-only attachment unchanged');
    assert.equal(endpointRecord(a, a6!, 'node1', '192.168.1.1', 'running').vip6, 'fd00:61::2');
    assert.equal('vip6' in endpointRecord(a, a4!, 'node1', '192.168.1.1', 'running'), false);
  });
  test('a service on IPv4-only networks keeps no vips6 key; dnsrr gets none', () => {
    const st = state();
    const svc: ServiceRecord = { id: 's2', version: 1, spec, vips: {}, createdAt: 0, updatedAt: 0 };
    st.assignVips(svc, svc, ['n4']);
    assert.equal('vips6' in svc, false);
    const next = { ...svc };
    st.assignVips(svc, next, []);
    assert.deepEqual(next.vips, {});
    assert.equal('vips6' in next, false);
  });
  test('released when the service leaves the network or is removed; re-claimed on load', () => {
    const st = state();
    const svc: ServiceRecord = { id: 's3', version: 1, spec, vips: {}, createdAt: 0, updatedAt: 0 };
    st.assignVips(svc, svc, ['n6']);
    assert.deepEqual(svc.vips6, { n6: 'fd00:61::2' });
    const next = { ...svc };
    st.assignVips(svc, next, ['n4']);
    assert.equal('vips6' in next, false, 'left the dual-stack network: its IPv6 VIP is released');
    assert.equal(st.ipam.allocateAddress6('app6', 'x', 'fd00:61::2'), 'fd00:61::2', 'the released VIP can be held again');
    const st2 = state();
    (st2 as unknown as { claim6(n: string, o: string, ip: string): void }).claim6('n6', 'vip:s3', 'fd00:61::5');
    assert.throws(() => st2.ipam.allocateAddress6('app6', 'y', 'fd00:61::5'), /already held by vip:s3/);
    st2.services.set('s3', { ...svc, vips6: { n6: 'fd00:61::5' } });
    st2.deleteService('s3');
    assert.equal(st2.ipam.allocateAddress6('app6', 'z', 'fd00:61::5'), 'fd00:61::5', 'service rm releases it');
  });
});

const rec: EndpointRecord = {
  v: 1, taskId: 't1', taskName: 'web.1.t1', serviceId: 's1', serviceName: 'web', network: 'n1', networkName: 'app',
  ip: '10.0.1.5', ip6: 'fd00:61::5', mac: '02:42:0a:00:01:05', node: 'n1', nodeIp: '192.168.1.1', vip: '10.0.1.2', endpointMode: 'vip',
  aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running',
};

describe('endpoint record and DNS: vip6', () => {
  test('optional and additive: a record without it decodes as before; one with it round-trips', () => {
    const d = decodeEndpoint(encodeEndpoint(rec));
    assert.ok(d.ok && !('vip6' in d.record));
    const d2 = decodeEndpoint(encodeEndpoint({ ...rec, vip6: 'fd00:61::2' }));
    assert.ok(d2.ok && d2.record.vip6 === 'fd00:61::2');
  });
  test('AAAA web answers the IPv6 VIP, its PTR names the service; without one AAAA stays NODATA', () => {
    const reg = new DnsRegistry();
    reg.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.1.2', vip6: 'fd00:61:0::2' }, 0);
    reg.upsertService({ name: 'old', network: 'app', mode: 'vip', vip: '10.0.1.3' }, 0);
    const q = (name: string, qtype: number) => resolve(reg, ['app'], name, qtype, QCLASS.IN);
    const aaaa = q('web', QTYPE.AAAA);
    assert.equal(aaaa.kind, 'answer');
    assert.deepEqual(aaaa.kind === 'answer' ? aaaa.records.map((r) => r.data) : [], ['fd00:61::2'], 'canonical');
    const a = q('web', QTYPE.A);
    assert.deepEqual(a.kind === 'answer' ? a.records.map((r) => r.data) : [], ['10.0.1.2']);
    const ptr = q(reverseName6('fd00:61::2'), QTYPE.PTR);
    assert.deepEqual(ptr.kind === 'answer' ? ptr.records.map((r) => r.data) : [], ['web.app']);
    assert.equal(q('old', QTYPE.AAAA).kind, 'nodata');
    assert.throws(() => reg.upsertService({ name: 'bad', network: 'app', mode: 'vip', vip: '10.0.1.4', vip6: 'fd00::g' }, 0), /invalid IPv6 VIP/);
  });
});

const web = (backends: VipService['backends']): VipService => ({
  id: 'svc-web', name: 'web', vip: '10.9.0.10', vip6: 'fd00:9::10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends,
});
const B = [
  { id: 't1', ip: '10.9.0.2', ip6: 'fd00:9::2', state: 'active' as const },
  { id: 't2', ip: '10.9.0.3', ip6: 'fd00:9::3', state: 'active' as const },
  { id: 't3', ip: '10.9.0.4', state: 'active' as const },
];
const desired = (s: VipService[]): LbDesired => ({ services: s, ingress: [] });

describe('LB: IPv6 VIP frontends', () => {
  test('compile: the IPv6 VIP balances over the backends that have an IPv6 address', () => {
    const c = compile(desired([web(B)]));
    const f = c.get('vip fd00:9::10 tcp 80')!;
    assert.deepEqual(f.targets, [{ ip: 'fd00:9::2', port: 8080 }, { ip: 'fd00:9::3', port: 8080 }]);
    assert.equal(f.comment, 'web tcp/80 ipv6');
    assert.equal(c.get('vip 10.9.0.10 tcp 80')!.targets.length, 3, 'the IPv4 VIP is unchanged');
  });
  test('bad input is refused with a path', () => {
    assert.throws(() => compile(desired([{ ...web(B), vip: undefined }])), /services\[0\]\.vip6: an IPv6 VIP needs an IPv4 one/);
    assert.throws(() => compile(desired([{ ...web(B), vip6: 'fd00:9:0::10' }])), /not canonical IPv6 text/);
    assert.throws(() => compile(desired([web([...B, { id: 't4', ip: '10.9.0.5', ip6: 'fd00:9::2', state: 'active' }])])), /backends\[3\]\.ip6: two tasks share the address fd00:9::2/);
    const many = Array.from({ length: 40 }, (_, i) => ({ id: `m${i}`, ip: `10.9.1.${i + 1}`, ip6: `fd00:9::1:${(i + 1).toString(16)}`, state: 'active' as const }));
    assert.equal(compile(desired([web(many)])).get('vip fd00:9::10 tcp 80')!.targets.length, 40);
    assert.throws(() => compile(desired([web([...many, { id: 'm40', ip: '10.9.1.99', ip6: 'fd00:9::1:5', state: 'active' }])])), /backends\[40\]\.ip6: two tasks share the address fd00:9::1:5/, 'large lists too');
  });
  test('nftables full: the IPv4 table unchanged, the IPv6 table appended to the same script (golden)', () => {
    const { script } = planNftFull(compile(desired([web(B)])));
    assert.ok(script.endsWith(`}\n${NFT6_FULL_TAIL}`), script);
    assert.doesNotMatch(script.slice(0, script.indexOf('table ip6')), /fd00/, 'no IPv6 address in the ip table');
    const v4only = planNftFull(compile(desired([{ ...web(B), vip6: undefined }]))).script;
    assert.ok(v4only.endsWith('}\ntable ip6 meshd-lb6\ndelete table ip6 meshd-lb6\n'), 'no IPv6 frontend: only the delete (a stale table goes)');
  });
  test('nftables incremental: an IPv6 change re-renders the IPv6 table only; an IPv4-only change leaves it alone', () => {
    const a = compile(desired([web(B)]));
    const b = compile(desired([web([B[0]!, B[2]!])]));
    const s = renderNftIncremental(a, b);
    assert.match(s, /dnat ip6 to numgen random mod 1 map \{ 0 : fd00:9::2 \. 8080 \}/);
    assert.match(s, /^delete element ip meshd-lb /m, 'the IPv4 frontend lost t2 too');
    const c = compile(desired([web([B[0]!, B[1]!])]));
    assert.doesNotMatch(renderNftIncremental(a, c), /meshd-lb6/, 't3 has no IPv6 address: the IPv6 frontend did not change');
    const empty = renderNftIncremental(a, compile(desired([web([B[2]!])])));
    assert.match(empty, /set empty \{\n\t\ttype ipv6_addr \. inet_proto \. inet_service\n\t\telements = \{ fd00:9::10 \. tcp \. 80 comment "web tcp\/80 ipv6" \}/, 'no IPv6 backend: refused at once');
  });
  test('IPVS: an address service per IPv6 VIP, the VIP on lo as /128, no mark (golden)', () => {
    const p = renderIpvsFull(compile(desired([web(B)])));
    assert.equal(p.ipvs, [
      '-A -f 256 -s rr', '-a -f 256 -r 10.9.0.2:8080 -m -w 1', '-a -f 256 -r 10.9.0.3:8080 -m -w 1', '-a -f 256 -r 10.9.0.4:8080 -m -w 1',
      '-A -t [fd00:9::10]:80 -s rr', '-a -t [fd00:9::10]:80 -r [fd00:9::2]:8080 -m -w 1', '-a -t [fd00:9::10]:80 -r [fd00:9::3]:8080 -m -w 1', '',
    ].join('\n'));
    assert.equal(p.addrs, 'address replace 10.9.0.10/32 dev lo\naddress replace fd00:9::10/128 dev lo\n');
    assert.deepEqual([...p.marks.keys()], ['vip 10.9.0.10 tcp 80']);
    assert.doesNotMatch(p.nft.slice(0, p.nft.indexOf('table ip6')), /fd00/, 'the IPv4 mark table holds no IPv6 VIP');
    // a task's own connection to its own IPv6 VIP is masqueraded (the IPv4 vip-snat-marks twin)
    assert.ok(p.nft.endsWith(`}\n${IPVS6_NAT}`), p.nft);
    // a full resync against a kernel that already holds it: nothing to do for IPv6
    const again = renderIpvsFull(compile(desired([web(B)])), p.marks, { services: [
      { spec: '-f 256', fwmark: 256, scheduler: 'rr', extra: '', reals: ['10.9.0.2', '10.9.0.3', '10.9.0.4'].map((ip) => ({ ip, port: 8080, weight: 1, forward: 'm' })) },
      { spec: '-t [fd00:9::10]:80', fwmark: null, scheduler: 'rr', extra: '', reals: ['fd00:9::2', 'fd00:9::3'].map((ip) => ({ ip, port: 8080, weight: 1, forward: 'm' })) },
    ], marks: p.marks });
    assert.equal(again.ipvs, '');
    const inc = renderIpvsIncremental(compile(desired([web(B)])), compile(desired([web([B[0]!, B[2]!])])), p.marks);
    assert.equal(inc.ipvs, '-d -f 256 -r 10.9.0.3:8080\n-d -t [fd00:9::10]:80 -r [fd00:9::3]:8080\n');
    const gone = renderIpvsIncremental(compile(desired([web(B)])), compile(desired([{ ...web(B), vip6: undefined }])), p.marks);
    assert.equal(gone.ipvs, '-D -t [fd00:9::10]:80\n');
    assert.equal(gone.addrs, 'address del fd00:9::10/128 dev lo\n');
    assert.equal(gone.nft, 'table ip6 meshd-ipvs6\ndelete table ip6 meshd-ipvs6\n', 'the last IPv6 VIP went: its masquerade table goes');
    assert.equal(inc.nft, '', 'same IPv6 VIPs: the masquerade table is left alone');
  });
  test('the kernel read-back expects the IPv6 frontends too', () => {
    assert.deepEqual(expectedKernel(compile(desired([web(B)])), 'nftables').frontends.map((f) => f.key), ['vip 10.9.0.10 tcp 80', 'vip fd00:9::10 tcp 80']);
  });
  test('agent: the VipService of dual-stack records carries vip6 and the backends ip6', () => {
    const s = vipServiceOf([{ ...rec, vip6: 'fd00:61::2' }], 'n1')!;
    assert.equal(s.vip6, 'fd00:61::2');
    assert.equal(s.backends[0]!.ip6, 'fd00:61::5');
    assert.equal('vip6' in vipServiceOf([rec], 'n1')!, false);
  });
});

describe('policy over IPv6: fails closed', () => {
  const task = { taskId: 't1', serviceName: 'web', allowFrom: ['client'], attachments: [{ networkId: 'n6', networkName: 'app6', ip: '10.61.0.5', ip6: 'fd00:61::5' }] };
  const eps = [
    { serviceName: 'client', ip: '10.61.0.7', ip6: 'fd00:61::7' },
    { serviceName: 'rogue', ip: '10.61.0.8', ip6: 'fd00:61::8' },
  ];
  test('the task IPv6 address gets its own allow set and reject rules', () => {
    const p = desiredPolicy(task, () => eps)!;
    assert.equal(p.rules[0]!.daddr6, 'fd00:61::5');
    assert.deepEqual(p.rules[0]!.allowed6, ['fd00:61::7']);
    const s = renderFull(p);
    assert.match(s, /\tset allow6-n6 \{\n\t\ttype ipv6_addr\n\t\telements = \{ fd00:61::7 \}\n\t\}/);
    assert.match(s, /ip6 daddr fd00:61::5 ip6 saddr @allow6-n6 accept\n\t\tip6 daddr fd00:61::5 meta l4proto tcp reject with tcp reset/);
    assert.match(s, /ip6 daddr fd00:61::5 meta l4proto udp reject/);
    assert.equal(verdict(p, 'fd00:61::5', 'fd00:61::7'), null);
    assert.match(verdict(p, 'fd00:61::5', 'fd00:61::8') ?? '', /denied by policy of web/);
  });
  test('an endpoint change is an element delta of the IPv6 set too; an IPv4-only task renders as before', () => {
    const a = desiredPolicy(task, () => eps)!;
    const b = desiredPolicy(task, () => [...eps, { serviceName: 'client', ip: '10.61.0.9', ip6: 'fd00:61::9' }])!;
    assert.equal(renderDelta(a, b), 'add element inet meshd-policy allow-n6 { 10.61.0.9 }\nadd element inet meshd-policy allow6-n6 { fd00:61::9 }\n');
    const v4 = desiredPolicy({ ...task, attachments: [{ networkId: 'n4', networkName: 'plain', ip: '10.62.0.5' }] }, () => [])!;
    assert.equal('daddr6' in v4.rules[0]!, false);
    assert.doesNotMatch(renderFull(v4), /allow6|ip6 daddr [0-9a-f]/, 'no IPv6 address rules');
    // but link-local IPv6 is refused even there: the netns runtime leaves IPv6 on, every interface has fe80::
    assert.match(renderFull(v4), /ip6 daddr \{ fe80::\/10, ff00::\/8 \} meta l4proto tcp reject with tcp reset comment "denied by policy of web: link-local"/);
  });
});
