/** `netctl network create` flags → API body (issue #15's network rows). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkCreateBody } from '../../../src/cli/network-flags.js';
import { isMeshError } from '../../../src/core/errors.js';

const bad = (re: RegExp) => (e: unknown): boolean => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message);

describe('network create flags', () => {
  test('seed 000: macvlan with subnet, ip-range, aux address, gateway and parent', () => {
    assert.deepEqual(networkCreateBody('macnet41', {
      driver: 'macvlan', subnet: '192.168.0.0/16', ipRange: '192.168.41.0/24', auxAddress: ['favoriate_ip_ever=192.168.41.2'],
      gateway: '192.168.41.1', opt: ['parent=eth0'],
    }), {
      name: 'macnet41', driver: 'macvlan', attachable: false, internal: false, subnet: '192.168.0.0/16', gateway: '192.168.41.1',
      ipRange: '192.168.41.0/24', auxAddresses: { favoriate_ip_ever: '192.168.41.2' }, options: { parent: 'eth0' },
    });
  });
  test('labels (a bare key has the empty value), internal, mtu', () => {
    assert.deepEqual(networkCreateBody('app', { driver: 'overlay', label: ['env=prod', 'beta'], internal: true, mtu: '1400' }), {
      name: 'app', driver: 'overlay', attachable: false, internal: true, mtu: 1400, labels: { env: 'prod', beta: '' },
    });
  });
  test('malformed values are refused', () => {
    assert.throws(() => networkCreateBody('a', { driver: 'overlay', auxAddress: ['10.0.0.5'] }), bad(/--aux-address: expected name=IP/));
    assert.throws(() => networkCreateBody('a', { driver: 'overlay', auxAddress: ['x=10.0.0.5', 'x=10.0.0.6'] }), bad(/given twice/));
    assert.throws(() => networkCreateBody('a', { driver: 'overlay', opt: ['parent'] }), bad(/--opt: expected KEY=VALUE/));
    assert.throws(() => networkCreateBody('a', { driver: 'overlay', mtu: '1.5' }), bad(/--mtu must be an integer/));
    assert.throws(() => networkCreateBody('a', { driver: 'overlay', label: ['=x'] }), bad(/--label: empty key/));
  });
});
