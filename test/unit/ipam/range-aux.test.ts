/** Docker's --ip-range / --aux-address in the manager's IPAM (issue #15). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPool } from '../../../src/core/ipam/pools.js';
import { NetworkIpam } from '../../../src/core/ipam/networks.js';
import { isMeshError } from '../../../src/core/errors.js';

const badArg = (re: RegExp) => (e: unknown): boolean => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message);

describe('AddressPool ip-range and aux addresses', () => {
  test('dynamic addresses come only from the range, never an aux address (seed 000 example)', () => {
    const p = new AddressPool('192.168.0.0/16', '192.168.41.1', { ipRange: '192.168.41.0/29', auxAddresses: { favorite: '192.168.41.2' } });
    const got = Array.from({ length: 4 }, (_, i) => p.allocate(`t${i}`));
    assert.deepEqual(got, ['192.168.41.3', '192.168.41.4', '192.168.41.5', '192.168.41.6']);
    // .7 and .0 bound the /29 range but are ordinary addresses of the /16 subnet
    assert.equal(p.allocate('t4'), '192.168.41.7');
    assert.equal(p.allocate('t5'), '192.168.41.0');
    assert.equal(p.free, 0);
    assert.throws(() => p.allocate('t6'), badArg(/ip-range 192\.168\.41\.0\/29 of subnet 192\.168\.0\.0\/16 exhausted: all 6 assignable/));
    assert.equal(p.ipRange, '192.168.41.0/29');
    assert.deepEqual(p.auxAddresses, { favorite: '192.168.41.2' });
  });
  test('the network and broadcast addresses of the subnet are never handed out, even inside the range', () => {
    const p = new AddressPool('10.9.0.0/29', undefined, { ipRange: '10.9.0.4/30' });
    const got = [p.allocate('a'), p.allocate('b'), p.allocate('c')];
    assert.deepEqual(got.sort(), ['10.9.0.4', '10.9.0.5', '10.9.0.6']);
    assert.throws(() => p.allocate('d'), badArg(/exhausted/));
  });
  test('requested addresses: outside the range is allowed (restores), an aux address never', () => {
    const p = new AddressPool('10.9.1.0/24', undefined, { ipRange: '10.9.1.128/25', auxAddresses: { router: '10.9.1.200' } });
    assert.equal(p.allocate('old', '10.9.1.10'), '10.9.1.10');
    assert.throws(() => p.allocate('x', '10.9.1.200'), badArg(/reserved as aux-address router/));
  });
  test('validation', () => {
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { ipRange: '10.9.3.0/25' }), badArg(/ip-range 10\.9\.3\.0\/25 is not inside subnet 10\.9\.2\.0\/24/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { ipRange: '10.9.0.0/16' }), badArg(/not inside subnet/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { ipRange: '10.9.2.0/33' }), badArg(/CIDR/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { auxAddresses: { x: '10.9.9.9' } }), badArg(/aux-address x=10\.9\.9\.9 is not a usable address/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { auxAddresses: { x: '10.9.2.1' } }), badArg(/is the gateway/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { auxAddresses: { x: '10.9.2.9', y: '10.9.2.9' } }), badArg(/already reserved as x/));
    assert.throws(() => new AddressPool('10.9.2.0/24', undefined, { auxAddresses: { 'bad name': '10.9.2.9' } }), badArg(/aux-address name/));
    assert.throws(() => new AddressPool('10.9.2.0/24', '10.9.2.9', { ipRange: '10.9.2.8/31', auxAddresses: { a: '10.9.2.8' } }), badArg(/no assignable address left in 10\.9\.2\.8\/31/));
  });
});

describe('NetworkIpam with ip-range and aux addresses', () => {
  test('the allocation carries them; they need --subnet', () => {
    const ipam = new NetworkIpam();
    const a = ipam.create({ name: 'lan', subnet: '10.40.0.0/24', ipRange: '10.40.0.64/26', auxAddresses: { nas: '10.40.0.70' } });
    assert.equal(a.ipRange, '10.40.0.64/26');
    assert.deepEqual(a.auxAddresses, { nas: '10.40.0.70' });
    assert.equal(ipam.allocateAddress('lan', 't1'), '10.40.0.65');
    for (let i = 0; i < 5; i++) assert.notEqual(ipam.allocateAddress('lan', `u${i}`), '10.40.0.70');
    assert.throws(() => ipam.create({ name: 'x', ipRange: '10.0.0.0/25' }), badArg(/need --subnet/));
    assert.throws(() => ipam.create({ name: 'y', subnet: '10.41.0.0/24', ipRange: '10.42.0.0/25' }), badArg(/not inside subnet/));
    // nothing held by the failed one: the subnet is free again
    assert.equal(ipam.create({ name: 'y', subnet: '10.41.0.0/24' }).subnet, '10.41.0.0/24');
  });
});
