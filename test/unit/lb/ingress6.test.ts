/**
 * IPv6 published ports through the routing mesh (issue #19 item 2, last part), layer by layer:
 * the derived IPv6 ingress addresses, the host namespace's DNAT table (an `ip6` table of the same
 * name next to the unchanged `ip` one; on an IPv6-only underlay the `ip` table keeps no rule — the
 * bug that refused the whole transaction), the LB model (an `ingress6` frontend over the backends'
 * IPv6 ingress addresses), the `ip6 meshd-lb6` render (golden), IPVS (left out, IPv4 unchanged)
 * and the records the agent publishes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HOST_LINK6, INGRESS_NET6, ingress6Of, ingressOf, renderHostIngress, sboxRecord } from '../../../src/agent/lb/plan.js';
import { compile, isV6, type Backend, type IngressPublish, type LbDesired } from '../../../src/core/lb/model.js';
import { planNftFull, renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { IpvsSyncer } from '../../../src/core/lb/ipvs-syncer.js';
import { expectedKernel } from '../../../src/core/lb/kernel.js';
import type { EndpointRecord } from '../../../src/core/endpoints.js';
import { NFT6_INGRESS_FULL } from './golden.js';

const B: Backend[] = [
  { id: 't1', ip: '10.255.0.3', ip6: ingress6Of('10.255.0.3'), state: 'active', local: true },
  { id: 't2', ip: '10.255.0.4', ip6: ingress6Of('10.255.0.4'), state: 'active' },
  { id: 't3', ip: '10.255.0.6', state: 'active' },
];
const web = (backends: Backend[], over: Partial<IngressPublish> = {}): IngressPublish => ({ service: 'web', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends, ...over });
const d = (...ingress: IngressPublish[]): LbDesired => ({ services: [], ingress });
const strip = (bs: Backend[]): Backend[] => bs.map(({ ip6: _, ...b }) => b);

describe('IPv6 published ports: addresses and the host table', () => {
  test('IPv6 ingress addresses are derived from the IPv4 ones (reserved ULA /64 + 32 bits)', () => {
    assert.equal(INGRESS_NET6.subnet, 'fd6d:6573:6864:ff00::/64');
    assert.equal(ingress6Of('10.255.0.5'), 'fd6d:6573:6864:ff00::aff:5');
    assert.equal(ingress6Of('10.255.255.254'), 'fd6d:6573:6864:ff00::aff:fffe');
    assert.equal(ingress6Of('0.0.0.7'), 'fd6d:6573:6864:ff00::7');
  });

  test('IPv4 underlay: the host table is byte-identical to the IPv4-only render', () => {
    const ports = [{ proto: 'tcp' as const, port: 8080 }, { proto: 'udp' as const, port: 53 }];
    assert.equal(renderHostIngress('10.99.1.2', ports, []), renderHostIngress('10.99.1.2', ports));
    assert.doesNotMatch(renderHostIngress('10.99.1.2', ports), /ip6/);
    // A node that lost all its IPv6 underlay addresses drops its ip6 table in the same transaction (and only then).
    assert.match(renderHostIngress('10.99.1.2', ports, [], true), /\nadd table ip6 meshd-ingress\ndelete table ip6 meshd-ingress\n$/);
    assert.equal(renderHostIngress('10.99.1.2', ports, ['fd99:6c61:6200::2'], true), renderHostIngress('10.99.1.2', ports, ['fd99:6c61:6200::2']));
  });

  test('dual underlay: an ip6 table of the same name DNATs the IPv6 addresses to the sandbox, same transaction', () => {
    const t = renderHostIngress('10.99.1.2', [{ proto: 'tcp', port: 8080 }], ['fd99:6c61:6200::2']);
    assert.ok(t.startsWith(renderHostIngress('10.99.1.2', [{ proto: 'tcp', port: 8080 }])), 'the ip table first, unchanged');
    assert.match(t, /\nadd table ip6 meshd-ingress\ndelete table ip6 meshd-ingress\ntable ip6 meshd-ingress \{\n/);
    assert.equal(t.match(/ip6 daddr fd99:6c61:6200::2 meta l4proto \. th dport @published dnat ip6 to fd6d:6573:6864:fffe::2/g)?.length, 2, 'prerouting and output');
    assert.equal(HOST_LINK6.sboxIp, 'fd6d:6573:6864:fffe::2');
    assert.match(renderHostIngress('10.99.1.2', [], ['fd99::3', 'fd99::2']), /ip6 daddr \{ fd99::2, fd99::3 \} /);
  });

  test('golden (rendered before the ip/ip6 render was folded into one function, byte for byte)', () => {
    assert.equal(renderHostIngress('10.99.1.2', [{ proto: 'tcp', port: 8080 }], ['fd99:6c61:6200::2']), `add table ip meshd-ingress
delete table ip meshd-ingress
table ip meshd-ingress {
	set published {
		type inet_proto . inet_service
		elements = { tcp . 8080 }
	}
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		ip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
	}
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
	}
}
add table ip6 meshd-ingress
delete table ip6 meshd-ingress
table ip6 meshd-ingress {
	set published {
		type inet_proto . inet_service
		elements = { tcp . 8080 }
	}
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		ip6 daddr fd99:6c61:6200::2 meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
	}
	chain out {
		type nat hook output priority -100; policy accept;
		ip6 daddr fd99:6c61:6200::2 meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
	}
}
`);
    assert.equal(renderHostIngress('10.99.1.2', [], ['fd99::3', 'fd99::2', 'fd99::3']), `add table ip meshd-ingress
delete table ip meshd-ingress
table ip meshd-ingress {
	set published {
		type inet_proto . inet_service
	}
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		ip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
	}
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
	}
}
add table ip6 meshd-ingress
delete table ip6 meshd-ingress
table ip6 meshd-ingress {
	set published {
		type inet_proto . inet_service
	}
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		ip6 daddr { fd99::2, fd99::3 } meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
	}
	chain out {
		type nat hook output priority -100; policy accept;
		ip6 daddr { fd99::2, fd99::3 } meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
	}
}
`);
  });

  test('IPv6-only underlay: the ip table names no IPv6 address (nft refused that transaction), the ip6 table DNATs', () => {
    const t = renderHostIngress('fd99:6c61:6200::2', [{ proto: 'tcp', port: 8080 }], ['fd99:6c61:6200::2']);
    const ip = t.slice(0, t.indexOf('add table ip6'));
    assert.doesNotMatch(ip, /daddr/);
    assert.match(ip, /elements = \{ tcp \. 8080 \}/);
    assert.match(t.slice(ip.length), /ip6 daddr fd99:6c61:6200::2 meta l4proto/);
  });
});

describe('IPv6 published ports: model and renders', () => {
  test('an ingress6 frontend over the backends with an IPv6 ingress address; host mode and IPv4-only backends get none', () => {
    const c = compile(d(web(B), web(B, { service: 'loc', publishedPort: 8081, policy: 'local' })));
    assert.deepEqual([...c.keys()].sort(), ['ingress tcp 8080', 'ingress tcp 8081', 'ingress6 tcp 8080', 'ingress6 tcp 8081']);
    const f6 = c.get('ingress6 tcp 8080')!;
    assert.ok(isV6(f6) && f6.masquerade);
    assert.deepEqual(f6.targets, [{ ip: 'fd6d:6573:6864:ff00::aff:3', port: 80 }, { ip: 'fd6d:6573:6864:ff00::aff:4', port: 80 }]);
    assert.equal(c.get('ingress tcp 8080')!.targets.length, 3, 'IPv4 keeps every backend');
    assert.deepEqual(c.get('ingress6 tcp 8081')!.targets.map((t) => t.ip), ['fd6d:6573:6864:ff00::aff:3'], 'policy local: local tasks only');
    assert.equal(c.get('ingress6 tcp 8081')!.masquerade, false);
    assert.deepEqual([...compile(d(web(strip(B)))).keys()], ['ingress tcp 8080']);
    assert.deepEqual([...compile(d(web(B, { mode: 'host', policy: 'local' }))).keys()], ['ingress tcp 8080']);
  });

  test('nftables: the ip table is unchanged by IPv6 backends; the ip6 table balances, masquerades cluster, refuses empty (golden)', () => {
    const both = [web(B), web([B[2]!, { ...B[1]!, local: false }], { service: 'loc', publishedPort: 8081, proto: 'udp', targetPort: 53, policy: 'local' })];
    const s = planNftFull(compile(d(...both))).script;
    const s4 = planNftFull(compile(d(...both.map((g) => ({ ...g, backends: strip(g.backends) }))))).script;
    assert.equal(s.slice(0, s.indexOf('table ip6')), s4.slice(0, s4.indexOf('table ip6')));
    assert.equal(s.slice(s.indexOf('table ip6')), NFT6_INGRESS_FULL);
    const inc = renderNftIncremental(compile(d(...both)), compile(d(web([B[0]!, B[2]!]), both[1]!)));
    assert.match(inc, /map \{ 0 : fd6d:6573:6864:ff00::aff:3 \. 80 \}/, 'an endpoint change re-renders the ip6 table');
    const loc = planNftFull(compile(d(web(B, { policy: 'local' })))).script;
    assert.doesNotMatch(loc.slice(loc.indexOf('table ip6')), /masquerade|meta mark/, 'policy local: no masquerade');
  });

  test('IPVS: ingress6 frontends are -6 fwmark services after the IPv4 ones, whose state is exactly as without them', () => {
    const c = compile(d(web(B)));
    const a = new IpvsSyncer().plan(d(web(B)));
    const b = new IpvsSyncer().plan(d(web(strip(B))));
    assert.ok(a.ipvs.startsWith(b.ipvs), 'the IPv4 services first, unchanged');
    assert.equal(a.ipvs.slice(b.ipvs.length), '-A -f 257 -6 -s rr\n-a -f 257 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 1\n-a -f 257 -6 -r [fd6d:6573:6864:ff00::aff:4]:80 -m -w 1\n');
    assert.equal(a.nft.slice(0, a.nft.indexOf('table ip6')), b.nft.slice(0, b.nft.indexOf('table ip6')), 'the ip mark table unchanged');
    assert.match(a.nft.slice(a.nft.indexOf('table ip6')), /elements = \{ tcp \. 8080 : 257 \}/, 'the ip6 mark table routes the IPv6 port');
    assert.deepEqual(expectedKernel(c, 'nftables').frontends.map((f) => f.key), ['ingress tcp 8080', 'ingress6 tcp 8080'], 'nftables reads ip6 meshd-lb6 back');
    assert.deepEqual(expectedKernel(c, 'ipvs').frontends.map((f) => f.key), ['ingress tcp 8080', 'ingress6 tcp 8080'], 'IPVS reads its -6 fwmark services back');
  });
});

describe('IPv6 published ports: records', () => {
  const rec = (over: Partial<EndpointRecord>): EndpointRecord => ({
    v: 1, taskId: 't1', taskName: 'web.1', serviceId: 'svcweb', serviceName: 'web', network: 'ingress', networkName: 'ingress',
    ip: '10.255.0.3', mac: '02:42:0a:ff:00:03', node: 'n1', nodeIp: 'fd99:6c61:6200::1', vip: null, endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80, published: 8080 }], state: 'running', ...over,
  });
  test('an ingress record with ip6 gives a backend with it; the sandbox record carries its IPv6 address only when asked', () => {
    const g = ingressOf([rec({ ip6: ingress6Of('10.255.0.3') })], 'n1');
    assert.equal(g[0]!.backends[0]!.ip6, 'fd6d:6573:6864:ff00::aff:3');
    const addr = { ip: '10.255.0.2', mac: '02:42:0a:ff:00:02' };
    assert.equal(sboxRecord('n1', '10.99.1.1', addr).ip6, undefined);
    assert.deepEqual(Object.keys(sboxRecord('n1', '10.99.1.1', addr)), Object.keys(sboxRecord('n1', '10.99.1.1', addr, true)).filter((k) => k !== 'ip6'));
    assert.equal(sboxRecord('n1', '10.99.1.1', addr, true).ip6, 'fd6d:6573:6864:ff00::aff:2');
  });
});
