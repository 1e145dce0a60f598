/** Dual-stack IPAM (issue #19 item 2): IPv6 text forms, subnets (/64../124, ULA auto /64), task addresses. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIp6, formatIp6, isIp6, parseCidr6, parseIp6, parseReverse6, reverseName6,
} from '../../../src/core/ipam/addr6.js';
import { AddressPool6, DEFAULT_POOL6, SubnetPool6 } from '../../../src/core/ipam/pools6.js';
import { NetworkIpam } from '../../../src/core/ipam/networks.js';
import { MeshError } from '../../../src/core/errors.js';

const bad = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
};

describe('IPv6 addresses (addr6.ts)', () => {
  test('canonical form (RFC 5952)', () => {
    const cases: Array<[string, string]> = [
      ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
      ['fd00:0061:0000:0000:0000:0000:0000:0003', 'fd00:61::3'],
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
      ['fd6d:6573:6864::', 'fd6d:6573:6864::'],
    ];
    for (const [i, o] of cases) assert.equal(canonicalIp6(i), o, i);
    assert.equal(formatIp6(parseIp6('fd00:61::3') + 1n), 'fd00:61::4');
  });
  test('bad addresses are refused', () => {
    for (const s of ['', ':', 'fd00::1::2', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'g::1', '12345::', '::ffff:1.2.3.4', 'fe80::1%eth0', '10.0.0.1', '10.0.0.1:7946', 'a:b']) {
      assert.equal(isIp6(s), false, s);
    }
    for (const s of ['::', '::1', 'fd00::1', '1:2:3:4:5:6:7:8']) assert.equal(isIp6(s), true, s);
  });
  test('CIDRs: host bits, prefix range', () => {
    assert.deepEqual(parseCidr6('fd00:61::/64'), { base: parseIp6('fd00:61::'), prefix: 64 });
    bad(() => parseCidr6('fd00:61::1/64'), /host bits set \(did you mean fd00:61::\/64\?\)/);
    bad(() => parseCidr6('fd00::/129'), /prefix length 129 > 128/);
    bad(() => parseCidr6('fd00::'), /expected addr\/len/);
  });
  test('ip6.arpa names both ways', () => {
    const n = reverseName6('fd00:61::3');
    assert.equal(n, '3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.6.0.0.0.0.d.f.ip6.arpa');
    assert.equal(parseReverse6(n), 'fd00:61::3');
    assert.equal(parseReverse6('3.0.0.ip6.arpa'), undefined, 'partial names are not addresses');
    assert.equal(parseReverse6('x' + n.slice(1)), undefined);
  });
});

describe('IPv6 subnets (SubnetPool6)', () => {
  test('explicit: /64 to /124; larger, smaller and overlapping ones refused', () => {
    const p = new SubnetPool6();
    assert.equal(p.allocate('a', 'fd00:61::/64'), 'fd00:61::/64');
    assert.equal(p.allocate('b', 'fd00:62::/124'), 'fd00:62::/124');
    bad(() => p.allocate('c', 'fd00:63::/48'), /larger than a \/64/);
    bad(() => p.allocate('c', 'fd00:63::/126'), /too small: at least a \/124/);
    bad(() => p.allocate('c', 'fd00:61::/80'), /overlaps fd00:61::\/64 held by a/);
    bad(() => p.allocate('a', 'fd00:64::/64'), /already holds/);
  });
  test('automatic: the next free /64 of the ULA pool, skipping explicit ones; released ones come back', () => {
    const p = new SubnetPool6();
    assert.equal(DEFAULT_POOL6, 'fd6d:6573:6864::/48');
    assert.equal(p.allocate('x', 'fd6d:6573:6864:1::/64'), 'fd6d:6573:6864:1::/64');
    assert.equal(p.allocate('a'), 'fd6d:6573:6864::/64');
    assert.equal(p.allocate('b'), 'fd6d:6573:6864:2::/64');
    assert.equal(p.release('a'), true);
    assert.equal(p.allocate('c'), 'fd6d:6573:6864::/64');
  });
  test('a tiny pool runs out with a clear error', () => {
    const p = new SubnetPool6('fd00:1::/63');
    p.allocate('a');
    p.allocate('b');
    bad(() => p.allocate('c'), /IPv6 pool fd00:1::\/63 exhausted \(2 held\): pass an explicit IPv6 --subnet/);
  });
});

describe('IPv6 task addresses (AddressPool6)', () => {
  test('/64: never anycast or gateway, cycles forward, a released address is not reused at once', () => {
    const p = new AddressPool6('fd00:61::/64');
    assert.equal(p.gateway, 'fd00:61::1');
    assert.equal(p.free, 2n ** 64n - 2n);
    assert.equal(p.allocate('t1'), 'fd00:61::2');
    assert.equal(p.allocate('t2'), 'fd00:61::3');
    assert.equal(p.release('fd00:61::2'), true);
    assert.equal(p.allocate('t3'), 'fd00:61::4');
    assert.equal(p.owner('fd00:61::3'), 't2');
    assert.equal(p.allocate('r', 'fd00:61:0::ffff'), 'fd00:61::ffff', 'requested addresses are stored canonical');
    bad(() => p.allocate('r2', 'fd00:61::1'), /not assignable/);
    bad(() => p.allocate('r2', 'fd00:61::'), /not assignable/);
    bad(() => p.allocate('r2', 'fd00:62::5'), /not assignable/);
    bad(() => p.allocate('r2', 'fd00:61::3'), /already held by t2/);
  });
  test('/124: 14 addresses, the last one included (no broadcast in IPv6), then exhausted; a release frees one', () => {
    const p = new AddressPool6('fd00:62::/124');
    const got = Array.from({ length: 14 }, (_, i) => p.allocate(`t${i}`));
    assert.deepEqual(got, Array.from({ length: 14 }, (_, i) => `fd00:62::${(i + 2).toString(16)}`));
    assert.equal(p.free, 0n);
    bad(() => p.allocate('x'), /IPv6 subnet fd00:62::\/124 exhausted: all 14 task addresses are in use/);
    p.release('fd00:62::7');
    assert.equal(p.allocate('x'), 'fd00:62::7');
  });
});

describe('NetworkIpam dual stack', () => {
  test('--ipv6 with and without a subnet; v4-only networks unchanged; remove frees the IPv6 subnet', () => {
    const ipam = new NetworkIpam();
    const a = ipam.create({ name: 'app6', ipv6: true, subnet: '10.61.0.0/24', subnet6: 'fd00:61::/64' });
    assert.equal(a.subnet6, 'fd00:61::/64');
    assert.equal(a.gateway6, 'fd00:61::1');
    const b = ipam.create({ name: 'auto6', ipv6: true });
    assert.equal(b.subnet6, 'fd6d:6573:6864::/64');
    const c = ipam.create({ name: 'plain' });
    assert.equal('subnet6' in c, false);
    assert.equal(ipam.hasIpv6('plain'), false);
    assert.equal(ipam.allocateAddress6('app6', 'task:1'), 'fd00:61::2');
    bad(() => ipam.allocateAddress6('plain', 'task:1'), /network plain has no IPv6 subnet/);
    ipam.remove('app6');
    assert.equal(ipam.create({ name: 'again', ipv6: true, subnet6: 'fd00:61::/64' }).subnet6, 'fd00:61::/64');
  });
  test('bad requests hold nothing: IPv6 subnet without --ipv6, overlap, too large', () => {
    const ipam = new NetworkIpam();
    ipam.create({ name: 'one', ipv6: true, subnet6: 'fd00:61::/64' });
    bad(() => ipam.create({ name: 'x', subnet6: 'fd00:70::/64' }), /an IPv6 subnet needs --ipv6/);
    bad(() => ipam.create({ name: 'x', ipv6: true, subnet: '10.70.0.0/24', subnet6: 'fd00:61::/96' }), /overlaps fd00:61::\/64 held by one/);
    bad(() => ipam.create({ name: 'x', ipv6: true, subnet: '10.70.0.0/24', subnet6: 'fd00:70::/56' }), /larger than a \/64/);
    // Nothing was kept by the failures: the same IPv4 subnet and the name are still free.
    assert.equal(ipam.create({ name: 'x', subnet: '10.70.0.0/24' }).subnet, '10.70.0.0/24');
  });
});
