/** The gossip bench's wire breakdown (bench/lib/wire-capture.ts) reads pcap headers right, for every link type it meets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePcap, summarize } from '../../../bench/lib/wire-capture.js';

/** IPv4 + UDP (payload bytes) or TCP (flags, payload bytes) headers, as a capture holds them. */
function ip(proto: 'udp' | 'tcp', payload: number, flags = 0x18): Buffer {
  const l4 = proto === 'udp' ? 8 : 32;
  const b = Buffer.alloc(20 + l4);
  b[0] = 0x45;
  b.writeUInt16BE(20 + l4 + payload, 2);
  b[9] = proto === 'udp' ? 17 : 6;
  Buffer.from([10, 99, 1, 3, 10, 99, 1, 4]).copy(b, 12);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(7946, 22);
  if (proto === 'udp') b.writeUInt16BE(8 + payload, 24);
  else (b[32] = (32 / 4) << 4, b[33] = flags);
  return b;
}
function pcap(link: number, frames: { head: Buffer; wireLen: number }[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt32LE(link, 20);
  const recs = frames.map(({ head, wireLen }) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(head.length, 8);
    r.writeUInt32LE(wireLen, 12);
    return Buffer.concat([r, head]);
  });
  return Buffer.concat([g, ...recs]);
}
function sll2(body: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0800, 0);
  return Buffer.concat([h, body]);
}
function eth(body: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.writeUInt16BE(0x0800, 12);
  return Buffer.concat([h, body]);
}

test('SLL2 and Ethernet captures: UDP payload, TCP control vs data, connections, frame length as the port counters count it', () => {
  for (const [link, wrap, head] of [[276, sll2, 20], [1, eth, 14]] as const) {
    const udp = ip('udp', 50);
    const syn = ip('tcp', 0, 0x02);
    const data = ip('tcp', 300, 0x18);
    const frames = [udp, syn, data].map((b) => ({ head: wrap(b), wireLen: head + b.readUInt16BE(2) }));
    const f = parsePcap(pcap(link, frames));
    assert.deepEqual(f.map((x) => [x.proto, x.len, x.payload]), [['udp', 14 + 78, 50], ['tcp', 14 + 52, 0], ['tcp', 14 + 352, 300]], `link ${link}`);
    const s = summarize(f, 1, 1);
    assert.equal(s.perMemberBps.udp, 92);
    assert.equal(s.perMemberBps.udpHeaders, 42);
    assert.equal(s.perMemberBps.tcpControl, 66);
    assert.equal(s.perMemberBps.tcpData, 366);
    assert.equal(s.perMemberRate.tcpConnections, 1);
    assert.deepEqual(s.udpSizes, { '<=64': 1 });
  }
});

test('a cut last record is skipped; an unknown link type is refused', () => {
  const b = pcap(1, [{ head: eth(ip('udp', 10)), wireLen: 52 }]);
  assert.equal(parsePcap(b.subarray(0, b.length - 3)).length, 0);
  assert.throws(() => parsePcap(pcap(105, [])), /link type 105/);
});
