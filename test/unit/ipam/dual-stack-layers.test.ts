/**
 * Dual stack (issue #19 item 2) through the layers above IPAM: endpoint records old/new, DNS AAAA and
 * ip6.arpa PTR (resolver and wire bytes), IPv6 neighbours in the overlay's desired state, the task's
 * `nodad` address line, and the CLI / compose spellings (applied or refused, never dropped).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import DNS from 'dns2';
import { decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../../src/core/endpoints.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { QCLASS, QTYPE, resolve } from '../../../src/core/dns/resolver.js';
import { encodeAnswer } from '../../../src/core/dns/answer.js';
import { decodeQuery } from '../../../src/core/dns/wire.js';
import { snapshotRegistry, applySnapshot } from '../../../src/core/dns/snapshot.js';
import { reverseName6 } from '../../../src/core/ipam/addr6.js';
import { desiredNode } from '../../../src/core/overlay/desired.js';
import { diff } from '../../../src/core/overlay/diff.js';
import { fdbRows } from '../../../src/core/overlay/debug.js';
import { parseNeigh } from '../../../src/adapters/netlink/read.js';
import { attachScripts } from '../../../src/adapters/runtime/attach.js';
import { networkCreateBody } from '../../../src/cli/network-flags.js';
import { parseCompose } from '../../../src/core/compose/parse.js';
import { translateStack } from '../../../src/core/compose/translate.js';
import { MeshError } from '../../../src/core/errors.js';

const base: EndpointRecord = {
  v: 1, taskId: 't1', taskName: 'web.1.t1', serviceId: 's1', serviceName: 'web', network: 'n1', networkName: 'app',
  ip: '10.0.1.5', mac: '02:42:0a:00:01:05', node: 'n1', nodeIp: '192.168.1.1', vip: '10.0.1.2', endpointMode: 'vip',
  aliases: [], ports: [], state: 'running',
};

describe('endpoint record: ip6 is optional and additive', () => {
  test('an old record (no ip6) decodes exactly as before; a new one round-trips', () => {
    const old = new TextEncoder().encode(JSON.stringify(base));
    const d = decodeEndpoint(old);
    assert.ok(d.ok);
    assert.deepEqual(d.record, base);
    assert.equal('ip6' in d.record, false);
    const rec = { ...base, ip6: 'fd00:61::5' };
    const d2 = decodeEndpoint(encodeEndpoint(rec));
    assert.ok(d2.ok);
    assert.equal(d2.record.ip6, 'fd00:61::5');
  });
  test('a bad ip6 is a bad record (reported, not applied)', () => {
    for (const ip6 of ['10.0.0.1', 'FD00::1', 'zz::1', '']) {
      assert.deepEqual(decodeEndpoint(new TextEncoder().encode(JSON.stringify({ ...base, ip6 }))), { ok: false, reason: 'endpoint-schema' }, ip6);
    }
  });
});

function registry(): DnsRegistry {
  const r = new DnsRegistry();
  r.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.1.2' }, 1);
  r.upsertService({ name: 'rr', network: 'app', mode: 'dnsrr' }, 1);
  r.upsertTask({ name: 'web.1.aaa', network: 'app', service: 'web', ip: '10.0.1.5', ip6: 'fd00:61:0::0005', healthy: true, owner: 'n1', slot: 1 }, 1);
  r.upsertTask({ name: 'web.2.bbb', network: 'app', service: 'web', ip: '10.0.1.3', ip6: 'fd00:61::3', healthy: true, owner: 'n2', slot: 2 }, 1);
  r.upsertTask({ name: 'web.3.ccc', network: 'app', service: 'web', ip: '10.0.1.9', ip6: 'fd00:61::9', healthy: false, owner: 'n2', slot: 3 }, 1);
  r.upsertTask({ name: 'rr.1.ddd', network: 'app', service: 'rr', ip: '10.0.1.7', ip6: 'fd00:61::7', healthy: true, owner: 'n1', slot: 1 }, 1);
  r.upsertTask({ name: 'v4.1.eee', network: 'plain', service: 'v4', ip: '10.0.2.5', healthy: true, owner: 'n1', slot: 1 }, 1);
  return r;
}
const data = (r: ReturnType<typeof resolve>): Array<[number, string]> => (r.kind === 'answer' ? r.records.map((x) => [x.type, x.data]) : []);

describe('DNS AAAA and ip6.arpa PTR', () => {
  const reg = registry();
  const q = (name: string, type: number, nets = ['app']) => resolve(reg, nets, name, type, QCLASS.IN);
  test('golden answers', () => {
    assert.deepEqual(data(q('tasks.web', QTYPE.AAAA)), [[28, 'fd00:61::3'], [28, 'fd00:61::5']], 'healthy tasks, canonical, numeric order');
    assert.deepEqual(data(q('tasks.web', QTYPE.A)), [[1, '10.0.1.3'], [1, '10.0.1.5']], 'A unchanged');
    assert.deepEqual(data(q('web.1.aaa', QTYPE.AAAA)), [[28, 'fd00:61::5']]);
    assert.deepEqual(data(q('web.3.ccc.app', QTYPE.AAAA)), [[28, 'fd00:61::9']], 'a task name answers while unhealthy, as A does');
    assert.deepEqual(data(q('2.web', QTYPE.AAAA)), [[28, 'fd00:61::3']], 'slot names too');
    assert.deepEqual(data(q('rr', QTYPE.AAAA)), [[28, 'fd00:61::7']], 'dnsrr: task addresses');
    assert.deepEqual(data(q('web', QTYPE.A)), [[1, '10.0.1.2']]);
    assert.deepEqual(data(q('tasks.web', QTYPE.ANY)), [[1, '10.0.1.3'], [1, '10.0.1.5'], [28, 'fd00:61::3'], [28, 'fd00:61::5']]);
  });
  test('a vip-mode service without an IPv6 VIP and an IPv4-only network: AAAA is NODATA (NOERROR, no answer), never NXDOMAIN', () => {
    const vip = q('web', QTYPE.AAAA);
    assert.equal(vip.kind, 'nodata');
    assert.match(vip.kind === 'nodata' ? vip.reason : '', /no IPv6 address/);
    assert.equal(q('tasks.v4', QTYPE.AAAA, ['plain']).kind, 'nodata');
    assert.deepEqual(data(q('tasks.v4', QTYPE.A, ['plain'])), [[1, '10.0.2.5']]);
  });
  test('PTR of a task IPv6 address names the task; unknown addresses are forwarded', () => {
    assert.deepEqual(data(q(reverseName6('fd00:61::5'), QTYPE.PTR)), [[12, 'web.1.aaa.app']]);
    assert.deepEqual(data(q(reverseName6('fd00:61::5').toUpperCase() + '.', QTYPE.PTR)), [[12, 'web.1.aaa.app']]);
    assert.equal(q(reverseName6('fd00:61::5'), QTYPE.AAAA).kind, 'nodata');
    assert.equal(q(reverseName6('fd00:61::77'), QTYPE.PTR).kind, 'forward');
  });
  test('a changed ip6 is an effective change; the worker snapshot carries it', () => {
    const r = registry();
    const g = r.generation;
    assert.equal(r.upsertTask({ name: 'web.1.aaa', network: 'app', service: 'web', ip: '10.0.1.5', ip6: 'fd00:61::5', healthy: true, owner: 'n1', slot: 1 }, 2), false, 'same address, other spelling: no-op');
    assert.equal(r.upsertTask({ name: 'web.1.aaa', network: 'app', service: 'web', ip: '10.0.1.5', ip6: 'fd00:61::15', healthy: true, owner: 'n1', slot: 1 }, 2), true);
    assert.ok(r.generation > g);
    const replica = new DnsRegistry();
    applySnapshot(replica, snapshotRegistry(r), 3);
    assert.deepEqual(data(resolve(replica, ['app'], 'web.1.aaa', QTYPE.AAAA, QCLASS.IN)), [[28, 'fd00:61::15']]);
    assert.throws(() => r.upsertTask({ name: 'x.1.a', network: 'app', service: 'x', ip: '10.0.1.8', ip6: 'nope', healthy: true, owner: 'n1' }, 2),
      (e: unknown) => e instanceof MeshError && /invalid task IPv6 address/.test(e.message));
  });
  test('wire: AAAA records are 16 bytes of RDATA (golden bytes) and parse with dns2', () => {
    const p = new DNS.Packet();
    p.header.id = 7;
    p.questions.push({ name: 'tasks.web', type: QTYPE.AAAA, class: 1 } as never);
    const qb = p.toBuffer();
    const d = decodeQuery(qb);
    assert.ok(d.ok);
    const e = encodeAnswer({ query: qb, q: d.query, rcode: 0, records: [{ type: QTYPE.AAAA, data: 'fd00:61::3' }], ttlSec: 5, maxSize: 512, ednsUdpSize: 1232 });
    const answer = e.buf.subarray(d.query.questionEnd);
    assert.equal(answer.toString('hex'), 'c00c' + '001c' + '0001' + '00000005' + '0010' + 'fd000061000000000000000000000003');
    assert.deepEqual(e.aOffsets, [], 'no A offsets: AAAA sets are not shuffled in place');
    const parsed = DNS.Packet.parse(e.buf);
    assert.equal(parsed.answers.length, 1);
    assert.equal(parsed.answers[0]!.type, 28);
  });
});

describe('overlay: IPv6 neighbours next to the IPv4 ones (same MAC, same FDB entry)', () => {
  const config = { prefix: 'meshd-', hostNs: 'host1', underlayIp: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 };
  const net = { id: 'a1b2c3d4e5f6', name: 'app', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1', subnet6: 'fd00:61::/64' };
  const remote = [
    { network: net.id, ip: '10.0.1.9', ip6: 'fd00:61::9', mac: '02:42:0a:00:01:09', nodeIp: '192.168.1.2' },
    { network: net.id, ip: '10.0.1.10', ip6: 'fd00:99::a', mac: '02:42:0a:00:01:0a', nodeIp: '192.168.1.2' }, // outside subnet6: no v6 neighbour
  ];
  test('desired state, programmed with one neigh line each', () => {
    const d = desiredNode({ config, networks: [net], remote });
    const s = d.state.sandboxes[0]!;
    assert.deepEqual(s.neigh, [
      { ip: '10.0.1.9', mac: '02:42:0a:00:01:09' }, { ip: '10.0.1.10', mac: '02:42:0a:00:01:0a' }, { ip: 'fd00:61::9', mac: '02:42:0a:00:01:09' },
    ]);
    assert.equal(s.fdb.length, 2);
    const lines = diff(d.state, { sandboxes: [], strayHostLinks: [] }).map((o) => ('line' in o ? o.line : o.kind));
    assert.ok(lines.includes('neigh replace fd00:61::9 lladdr 02:42:0a:00:01:09 dev vx-4096 nud permanent'), lines.join('\n'));
    const rows = fdbRows(d.state, { sandboxes: [], strayHostLinks: [] });
    assert.deepEqual(rows.map((r) => [r.ip, r.ip6, r.neigh, r.neigh6]), [['10.0.1.9', 'fd00:61::9', 'missing', 'missing'], ['10.0.1.10', undefined, 'missing', undefined]],
      'debug overlay: one row per MAC, the IPv4 neighbour as before and the IPv6 one beside it');
    const v4only = desiredNode({ config, networks: [{ ...net, subnet6: undefined }], remote });
    assert.deepEqual(v4only.state.sandboxes[0]!.neigh.map((n) => n.ip), ['10.0.1.9', '10.0.1.10'], 'an IPv4-only network has no IPv6 neighbours');
  });
  test('read back: permanent IPv6 entries are read (canonical), so a converged sandbox diffs empty', () => {
    const text = JSON.stringify([
      { dst: '10.0.1.9', dev: 'vx-4096', lladdr: '02:42:0a:00:01:09', state: ['PERMANENT'] },
      { dst: 'fd00:61:0:0::9', dev: 'vx-4096', lladdr: '02:42:0A:00:01:09', state: ['PERMANENT'] },
      { dst: 'fe80::1', dev: 'br0', lladdr: '02:42:0a:00:01:01', state: ['REACHABLE'] },
    ]);
    assert.deepEqual(parseNeigh(text, 'vx-4096'), [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09' }, { ip: 'fd00:61::9', mac: '02:42:0a:00:01:09' }]);
  });
});

describe('task namespace: the IPv6 address is added with nodad', () => {
  test('golden task script', () => {
    const s = attachScripts('3f9a0c1d2e3b4a5c', 'meshd-t-3f9a0c1d2e3b', [{
      sandboxNs: 'meshd-ov-aaaa', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', ip6: 'fd00:61::5', prefix6: 64, mac: '02:42:0a:00:01:05', mtu: 1450,
    }]);
    assert.equal(s.task, 'link set lo up\nlink set eth0 address 02:42:0a:00:01:05 up\naddr add 10.0.1.5/24 dev eth0\naddr add fd00:61::5/64 dev eth0 nodad\nroute add default via 10.0.1.1 dev eth0\n');
  });
});

describe('CLI and compose spellings', () => {
  test('netctl network create --ipv6 --subnet v4 --subnet v6', () => {
    assert.deepEqual(networkCreateBody('app6', { driver: 'overlay', ipv6: true, subnet: ['10.61.0.0/24', 'fd00:61::/64'] }), {
      name: 'app6', driver: 'overlay', attachable: false, internal: false, subnet: '10.61.0.0/24', subnet6: 'fd00:61::/64', ipv6: true,
    });
    assert.deepEqual(networkCreateBody('auto', { driver: 'overlay', ipv6: true }), { name: 'auto', driver: 'overlay', attachable: false, internal: false, ipv6: true });
    assert.deepEqual(networkCreateBody('v4', { driver: 'overlay', subnet: ['10.1.0.0/24'] }), { name: 'v4', driver: 'overlay', attachable: false, internal: false, subnet: '10.1.0.0/24' });
    assert.throws(() => networkCreateBody('x', { driver: 'overlay', subnet: ['10.1.0.0/24', '10.2.0.0/24'] }), /at most one IPv4 and one IPv6 subnet/);
    assert.throws(() => networkCreateBody('x', { driver: 'overlay', ipv6: true, gateway: 'fd00::5' }), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_UNSUPPORTED');
  });
  const yml = (net: string) => `services:\n  a:\n    image: x\n    networks: [n]\nnetworks:\n  n:\n${net}`;
  test('compose enable_ipv6 + an IPv6 ipam.config entry are applied', () => {
    const f = parseCompose(yml('    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: 10.61.0.0/24\n        - subnet: fd00:61::/64\n'));
    const plan = translateStack('st', f);
    const req = plan.networks.find((n) => n.key === 'n')!.request!;
    assert.equal(req.subnet, '10.61.0.0/24');
    assert.equal(req.subnet6, 'fd00:61::/64');
    assert.equal(req.ipv6, true);
    const auto = translateStack('st', parseCompose(yml('    enable_ipv6: true\n'))).networks.find((n) => n.key === 'n')!.request!;
    assert.equal(auto.ipv6, true);
    assert.equal(auto.subnet6, undefined);
    const off = translateStack('st', parseCompose(yml('    enable_ipv6: false\n'))).networks.find((n) => n.key === 'n')!.request!;
    assert.equal(off.ipv6, undefined);
  });
  test('compose refusals name the path', () => {
    const refused = (net: string, re: RegExp) => assert.throws(() => parseCompose(yml(net)), (e: unknown) => e instanceof MeshError && re.test(e.message), net);
    refused('    ipam:\n      config:\n        - subnet: fd00:61::/64\n', /networks\.n\.ipam\.config\[0\]\.subnet: an IPv6 subnet needs enable_ipv6: true/);
    refused('    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: fd00:61::/64\n          gateway: fd00:61::9\n', /networks\.n\.ipam\.config\[0\]\.gateway/);
    refused('    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: 10.1.0.0/24\n        - subnet: 10.2.0.0/24\n', /networks\.n\.ipam\.config\[1\]: a second IPv4 entry/);
    refused('    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: fd00:1::/64\n        - subnet: fd00:2::/64\n', /a second IPv6 subnet/);
    refused('    enable_ipv6: maybe\n', /networks\.n\.enable_ipv6/);
  });
});
