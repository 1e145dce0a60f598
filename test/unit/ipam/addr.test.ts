import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidrsOverlap, formatCidr, formatIp, macFromIp, normalizeMac, parseCidr, parseIp, cidrContains, lastOf,
} from '../../../src/core/ipam/addr.js';

describe('addr', () => {
  test('parseIp / formatIp round trip', () => {
    for (const s of ['0.0.0.0', '10.0.0.1', '192.168.213.255', '255.255.255.255']) assert.equal(formatIp(parseIp(s)), s);
    assert.equal(parseIp('10.0.0.1'), 0x0a000001);
  });
  test('parseIp rejects junk', () => {
    for (const s of ['', '10.0.0', '10.0.0.256', '01.2.3.4', '1.2.3.4.5', 'a.b.c.d', ' 1.2.3.4', '1.2.3.-1']) {
      assert.throws(() => parseIp(s), /invalid IPv4 address/, s);
    }
  });
  const cidrs: [string, string | RegExp][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.1.2.3/32', '10.1.2.3/32'],
    ['10.0.0.1/24', /host bits set \(did you mean 10\.0\.0\.0\/24\?\)/],
    ['10.0.0.0/33', /prefix length 33 > 32/],
    ['10.0.0.0', /expected a\.b\.c\.d\/len/],
    ['10.0.0.0/', /expected/],
    ['300.0.0.0/8', /bad address/],
    ['10.0.0.0/8/8', /expected/],
  ];
  for (const [input, want] of cidrs) {
    test(`parseCidr ${input}`, () => {
      if (typeof want === 'string') assert.equal(formatCidr(parseCidr(input)), want);
      else assert.throws(() => parseCidr(input), (e: Error) => want.test(e.message) && /invalid CIDR/.test(e.message));
    });
  }
  const overlaps: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.0.0.0/8', true],
    ['10.0.1.0/24', '10.0.2.0/24', false],
    ['10.0.1.0/24', '10.0.1.128/25', true],
    ['0.0.0.0/0', '192.168.0.0/16', true],
    ['192.168.0.0/24', '192.168.1.0/24', false],
  ];
  for (const [a, b, want] of overlaps) test(`overlap ${a} ${b} = ${want}`, () => assert.equal(cidrsOverlap(parseCidr(a), parseCidr(b)), want));
  test('contains and last', () => {
    const c = parseCidr('10.0.1.0/24');
    assert.equal(cidrContains(c, parseIp('10.0.1.255')), true);
    assert.equal(cidrContains(c, parseIp('10.0.2.0')), false);
    assert.equal(formatIp(lastOf(c)), '10.0.1.255');
    assert.equal(formatIp(lastOf(parseCidr('0.0.0.0/0'))), '255.255.255.255');
  });
  test('macFromIp is Docker style 02:42 + address bytes', () => {
    assert.equal(macFromIp('10.0.0.2'), '02:42:0a:00:00:02');
    assert.equal(macFromIp('172.18.255.1'), '02:42:ac:12:ff:01');
    assert.throws(() => macFromIp('nope'), /invalid IPv4/);
  });
  test('normalizeMac', () => {
    assert.equal(normalizeMac('02:42:AC:12:FF:01'), '02:42:ac:12:ff:01');
    for (const m of ['02:42:ac:12:ff', '0242ac12ff01', 'zz:42:ac:12:ff:01']) assert.throws(() => normalizeMac(m), /invalid MAC/);
  });
});
