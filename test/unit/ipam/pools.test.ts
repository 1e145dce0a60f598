import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool, SubnetPool, VniAllocator, VNI_MAX, VNI_MIN } from '../../../src/core/ipam/pools.js';
import { NetworkIpam } from '../../../src/core/ipam/networks.js';
import { isMeshError } from '../../../src/core/errors.js';

const badArg = (re: RegExp) => (e: unknown): boolean => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message);

describe('SubnetPool', () => {
  test('default pool hands out 10.0.0.0/24, 10.0.1.0/24, ... first fit', () => {
    const p = new SubnetPool();
    assert.equal(p.allocate('a'), '10.0.0.0/24');
    assert.equal(p.allocate('b'), '10.0.1.0/24');
    p.release('a');
    assert.equal(p.allocate('c'), '10.0.0.0/24');
  });
  test('explicit subnets are checked for overlap and skipped by the pool', () => {
    const p = new SubnetPool([{ cidr: '10.10.0.0/16', size: 24 }]);
    assert.equal(p.allocate('x', '10.10.0.0/23'), '10.10.0.0/23');
    assert.equal(p.allocate('y'), '10.10.2.0/24');
    assert.throws(() => p.allocate('z', '10.10.1.0/24'), badArg(/overlaps 10\.10\.0\.0\/23 held by x/));
    assert.throws(() => p.allocate('z', '10.0.0.0/8'), badArg(/overlaps/));
    assert.equal(p.get('z'), undefined);
  });
  test('too small and invalid subnets', () => {
    const p = new SubnetPool();
    assert.throws(() => p.allocate('a', '10.1.1.0/30'), badArg(/too small: at least \/29/));
    assert.throws(() => p.allocate('a', '10.1.1.0/24x'), badArg(/invalid CIDR/));
    assert.equal(p.allocate('a', '10.1.1.0/29'), '10.1.1.0/29');
  });
  test('exhaustion names the pool', () => {
    const p = new SubnetPool([{ cidr: '10.20.0.0/22', size: 24 }]);
    for (let i = 0; i < 4; i++) p.allocate(`n${i}`);
    assert.throws(() => p.allocate('n4'), badArg(/address pool exhausted: no free subnet left in 10\.20\.0\.0\/22 \(\/24 subnets\) \(4 held\)/));
  });
  test('several pools are used in order', () => {
    const p = new SubnetPool([{ cidr: '10.30.0.0/24', size: 25 }, { cidr: '172.30.0.0/16', size: 24 }]);
    assert.deepEqual([p.allocate('a'), p.allocate('b'), p.allocate('c')], ['10.30.0.0/25', '10.30.0.128/25', '172.30.0.0/24']);
  });
  test('a big held block is skipped without scanning it', () => {
    const p = new SubnetPool();
    p.allocate('big', '10.0.0.0/9');
    assert.equal(p.allocate('a'), '10.128.0.0/24');
  });
  test('bad pool specs', () => {
    assert.throws(() => new SubnetPool([]), badArg(/at least one/));
    assert.throws(() => new SubnetPool([{ cidr: '10.0.0.0/16', size: 12 }]), badArg(/between \/16 and \/29/));
    assert.throws(() => new SubnetPool([{ cidr: '10.0.0.0/16', size: 30 }]), badArg(/between/));
  });
});

describe('VniAllocator', () => {
  test('range, requested, release, no immediate reuse', () => {
    const v = new VniAllocator();
    assert.equal(v.allocate(), VNI_MIN);
    assert.equal(v.allocate(), VNI_MIN + 1);
    assert.equal(v.allocate(5000), 5000);
    assert.throws(() => v.allocate(5000), badArg(/already in use/));
    assert.throws(() => v.allocate(4095), badArg(/out of range 4096\.\.16777215/));
    assert.throws(() => v.allocate(VNI_MAX + 1), badArg(/out of range/));
    v.release(VNI_MIN);
    assert.equal(v.allocate(), VNI_MIN + 2);
  });
});

describe('AddressPool', () => {
  test('skips network, gateway and broadcast', () => {
    const a = new AddressPool('10.0.0.0/29');
    assert.equal(a.gateway, '10.0.0.1');
    const got = [1, 2, 3, 4, 5].map((i) => a.allocate(`t${i}`));
    assert.deepEqual(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    assert.throws(() => a.allocate('t6'), badArg(/10\.0\.0\.0\/29 exhausted: all 5 task addresses/));
    a.release('10.0.0.4');
    assert.equal(a.allocate('t7'), '10.0.0.4');
  });
  test('explicit gateway and requested addresses', () => {
    const a = new AddressPool('10.0.0.0/24', '10.0.0.254');
    assert.equal(a.allocate('t'), '10.0.0.1');
    for (const bad of ['10.0.0.0', '10.0.0.255', '10.0.0.254', '10.0.1.5']) assert.throws(() => a.allocate('x', bad), badArg(/not assignable/));
    assert.equal(a.allocate('v', '10.0.0.100'), '10.0.0.100');
    assert.throws(() => a.allocate('w', '10.0.0.100'), badArg(/held by v/));
    assert.equal(a.owner('10.0.0.100'), 'v');
    assert.throws(() => new AddressPool('10.0.0.0/24', '10.0.0.255'), badArg(/gateway/));
    assert.throws(() => new AddressPool('10.0.0.0/24', '10.0.1.1'), badArg(/gateway/));
  });
  test('released address is not reused at once (cursor moves on)', () => {
    const a = new AddressPool('10.0.0.0/24');
    const x = a.allocate('a');
    a.release(x);
    assert.notEqual(a.allocate('b'), x);
    assert.equal(a.free, 253 - 1);
  });
});

describe('NetworkIpam', () => {
  test('create / list / remove; failures hold nothing', () => {
    const ipam = new NetworkIpam([{ cidr: '10.50.0.0/23', size: 24 }]);
    const a = ipam.create({ name: 'a' });
    assert.deepEqual(a, { name: 'a', subnet: '10.50.0.0/24', gateway: '10.50.0.1', vni: 4096, attachable: false });
    assert.throws(() => ipam.create({ name: 'b', subnet: '10.60.0.0/24', gateway: '10.61.0.1' }), badArg(/gateway/));
    assert.throws(() => ipam.create({ name: 'b', vni: 4096 }), badArg(/VNI 4096 already in use/));
    assert.throws(() => ipam.create({ name: 'b', mtu: 20 }), badArg(/invalid MTU/));
    assert.throws(() => ipam.create({ name: '-bad' }), badArg(/invalid network name/));
    assert.throws(() => ipam.create({ name: 'b', gateway: '10.50.1.1' }), badArg(/--gateway needs --subnet/));
    const b = ipam.create({ name: 'b', mtu: 1400, attachable: true });
    assert.equal(b.subnet, '10.50.1.0/24', 'the failed attempts left the subnet free');
    assert.equal(b.vni, 4097);
    assert.throws(() => ipam.create({ name: 'c' }), badArg(/exhausted.*10\.50\.0\.0\/23/));
    assert.equal(ipam.allocateAddress('a', 'task1'), '10.50.0.2');
    ipam.remove('a');
    assert.throws(() => ipam.remove('a'), (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_FOUND');
    assert.deepEqual(ipam.list().map((n) => n.name), ['b']);
    assert.equal(ipam.create({ name: 'c' }).subnet, '10.50.0.0/24');
  });
});
