/**
 * PROXY protocol encoder/decoder (src/core/proxy-protocol.ts) against haproxy's proxy-protocol.txt:
 * its v1 examples and worst cases (§2.1), the v2 layout (§2.2: signature, ver_cmd, fam, len,
 * addresses, ports), IPv4-mapped handling, and refusals with MESHD_BAD_ARGUMENT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { decodeProxyHeader, encodeV1, encodeV2, formatIpv6, ipv6Bytes, V1_MAX_BYTES, V2_SIGNATURE } from '../../../src/core/proxy-protocol.js';

const conn = (sa: string, da: string, sp: number, dp: number) => ({ source: { address: sa, port: sp }, destination: { address: da, port: dp } });
const bad = (f: () => unknown, re?: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && (!re || re.test(e.message)));
const F = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

test('v1: the spec\'s examples and worst cases, byte for byte', () => {
  const rows: Array<[ReturnType<typeof conn> | null, string]> = [
    [conn('192.168.0.1', '192.168.0.11', 56324, 443), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'],
    [conn('255.255.255.255', '255.255.255.255', 65535, 65535), 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'],
    [conn(F, F, 65535, 65535), `PROXY TCP6 ${F} ${F} 65535 65535\r\n`],
    [null, 'PROXY UNKNOWN\r\n'],
    [conn('2001:db8::1', '2001:db8:0:0:1:0:0:1', 1, 80), 'PROXY TCP6 2001:db8::1 2001:db8::1:0:0:1 1 80\r\n'],
    // A socket on :: reports IPv4 clients as IPv4-mapped: both mapped → written as TCP4.
    [conn('::ffff:10.99.0.200', '::ffff:10.99.1.2', 40000, 8080), 'PROXY TCP4 10.99.0.200 10.99.1.2 40000 8080\r\n'],
    // Mixed families: the IPv4 end becomes IPv4-mapped IPv6 (one family per line).
    [conn('10.0.0.1', '2001:db8::2', 5, 6), 'PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 5 6\r\n'],
  ];
  for (const [c, want] of rows) {
    const got = encodeV1(c);
    assert.equal(got.toString('latin1'), want);
    assert.ok(got.length <= V1_MAX_BYTES);
  }
  // The worst-case TCP6 line is 104 bytes; the spec's 107 leaves room for "UNKNOWN" + addresses.
  assert.equal(encodeV1(conn(F, F, 65535, 65535)).length, 104);
});

test('v2: layout of TCP over IPv4 (28 bytes) and IPv6 (52 bytes), LOCAL (16 bytes)', () => {
  // haproxy sending v2 for 172.19.0.1:42578 → 172.19.0.3:80 (a capture of `send-proxy-v2`).
  const v4 = encodeV2(conn('172.19.0.1', '172.19.0.3', 42578, 80));
  assert.equal(v4.toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'ac130001' + 'ac130003' + 'a652' + '0050');
  const v6 = encodeV2(conn('2001:db8::1', 'fe80::2', 1, 65535));
  assert.equal(v6.length, 52);
  assert.deepEqual(v6.subarray(0, 12), V2_SIGNATURE);
  assert.equal(v6.toString('hex', 12, 16), '21210024');
  assert.equal(v6.toString('hex', 16, 32), '20010db8000000000000000000000001');
  assert.equal(v6.toString('hex', 32, 48), 'fe800000000000000000000000000002');
  assert.equal(v6.toString('hex', 48, 52), '0001ffff');
  assert.equal(encodeV2(null).toString('hex'), '0d0a0d0a000d0a515549540a20000000');
  // IPv4-mapped pair: TCP over IPv4.
  assert.equal(encodeV2(conn('::ffff:1.2.3.4', '::ffff:5.6.7.8', 1, 2)).toString('hex', 12), '2111000c010203040506070800010002');
});

test('decode: round trips, incomplete input, trailing payload untouched', () => {
  for (const c of [conn('10.99.0.200', '10.99.1.2', 40000, 8080), conn('2001:db8::1', 'fe80::2', 1, 65535)]) {
    for (const enc of [encodeV1, encodeV2]) {
      const h = enc(c);
      const buf = Buffer.concat([h, Buffer.from('GET / HTTP/1.1\r\n')]);
      const d = decodeProxyHeader(buf);
      assert.equal(d.status, 'ok');
      if (d.status !== 'ok') continue;
      assert.equal(d.length, h.length);
      assert.deepEqual(d.connection, c);
      for (let i = 0; i < h.length; i++) assert.equal(decodeProxyHeader(h.subarray(0, i)).status, 'incomplete', `${h.length} bytes cut at ${i}`);
    }
  }
  const u = decodeProxyHeader(encodeV1(null));
  assert.ok(u.status === 'ok' && u.connection === null && u.version === 'v1');
  const l = decodeProxyHeader(encodeV2(null));
  assert.ok(l.status === 'ok' && l.connection === null && l.version === 'v2');
  // v2 TLVs after the addresses are skipped (len covers them).
  const tlv = Buffer.from(encodeV2(conn('1.2.3.4', '5.6.7.8', 1, 2)));
  tlv.writeUInt16BE(12 + 4, 14);
  const withTlv = Buffer.concat([tlv, Buffer.from([0x04, 0x00, 0x01, 0x00])]);
  const d = decodeProxyHeader(withTlv);
  assert.ok(d.status === 'ok' && d.length === 32);
});

test('refusals: bad addresses, ports, lines, v2 fields', () => {
  bad(() => encodeV1(conn('10.0.0.256', '10.0.0.1', 1, 1)), /source address/);
  bad(() => encodeV1(conn('10.0.0.1', 'example.com', 1, 1)), /destination address/);
  bad(() => encodeV1(conn('10.0.0.1', '10.0.0.2', 65536, 1)), /source port/);
  bad(() => encodeV2(conn('10.0.0.1', '10.0.0.2', 1, -1)), /destination port/);
  bad(() => encodeV2(conn('01.0.0.1', '10.0.0.2', 1, 1)));
  bad(() => decodeProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')), /not a PROXY header/);
  bad(() => decodeProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')));
  bad(() => decodeProxyHeader(Buffer.from('PROXY TCP4 ::1 ::2 1 2\r\n')), /not TCP4/);
  bad(() => decodeProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n')), /port/);
  bad(() => decodeProxyHeader(Buffer.from('PROXY ' + 'x'.repeat(120))), /longer than 107/);
  const v2 = encodeV2(conn('1.2.3.4', '5.6.7.8', 1, 2));
  const ver = Buffer.from(v2);
  ver[12] = 0x31;
  bad(() => decodeProxyHeader(ver), /version 3/);
  const udp = Buffer.from(v2);
  udp[13] = 0x12;
  bad(() => decodeProxyHeader(udp), /only TCP/);
});

test('IPv6 text: parsing forms and RFC 5952 output', () => {
  const rows: Array<[string, string]> = [
    ['::', '::'], ['::1', '::1'], ['1::', '1::'], ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8::1:0:0:1', '2001:db8::1:0:0:1'], ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], ['::FFFF:c000:201', '::ffff:192.0.2.1'],
  ];
  for (const [inp, out] of rows) assert.equal(formatIpv6(ipv6Bytes(inp)!), out, inp);
  for (const s of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', '1:2:3:4:5:6:7::8', 'g::1', '::1.2.3']) assert.equal(ipv6Bytes(s), null, s);
});
