/**
 * The cache-hit fast path's pre-parse (FastQuery): plain queries parse to the same fields decodeQuery
 * finds; everything unusual falls back (false) — and, over 20 000 seeded mutations, it never accepts a
 * packet the full decoder would reject or read differently.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import { decodeQuery, responseLimit } from '../../../src/core/dns/wire.js';
import { FastQuery } from '../../../src/adapters/dns-server/fastpath.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { Forwarder } from '../../../src/adapters/dns-server/forwarder.js';
import { DnsHandler } from '../../../src/adapters/dns-server/handler.js';
import { buildQuery, encodeName, optRecord } from './helpers.js';

const opt = (size: number, version = 0, options: Buffer = Buffer.alloc(0)): Buffer => {
  const b = optRecord(size, version);
  b.writeUInt16BE(options.length, 9);
  return Buffer.concat([b, options]);
};
const cookie = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);

describe('dns fast path: FastQuery.parse', () => {
  const accepted: Array<[string, Buffer, { edns: boolean; udpSize: number; qtype: number; rd: boolean }]> = [
    ['plain A', buildQuery({ name: ['web'] }), { edns: false, udpSize: 512, qtype: 1, rd: true }],
    ['no RD, AAAA', buildQuery({ name: ['Web', 'App'], flags: 0, type: 28 }), { edns: false, udpSize: 512, qtype: 28, rd: false }],
    ['EDNS 1232', buildQuery({ arcount: 1, extra: opt(1232) }), { edns: true, udpSize: 1232, qtype: 1, rd: true }],
    ['EDNS size < 512 reads as 512', buildQuery({ arcount: 1, extra: opt(100) }), { edns: true, udpSize: 512, qtype: 1, rd: true }],
    ['EDNS with a cookie option (dig)', buildQuery({ arcount: 1, extra: opt(4096, 0, cookie) }), { edns: true, udpSize: 4096, qtype: 1, rd: true }],
  ];
  for (const [name, buf, want] of accepted) {
    test(`accepts ${name}, same fields as decodeQuery`, () => {
      const f = new FastQuery();
      assert.equal(f.parse(buf), true);
      const d = decodeQuery(buf);
      assert.ok(d.ok);
      assert.equal(f.nameEnd, d.query.nameEnd);
      assert.equal(f.questionEnd, d.query.questionEnd);
      assert.equal(f.qtype, want.qtype);
      assert.equal(f.edns, want.edns);
      assert.equal(f.udpSize, want.udpSize);
      assert.equal(f.rd, want.rd);
      for (const tcp of [false, true]) for (const cap of [512, 1232, 4096]) assert.equal(f.limit(tcp, cap), responseLimit(d.query, tcp, cap));
    });
  }

  const long = Buffer.alloc(64, 0x61);
  const rejected: Array<[string, Buffer]> = [
    ['short header', Buffer.alloc(11)],
    ['QR set', buildQuery({ flags: 0x8100 })],
    ['opcode STATUS', buildQuery({ flags: 2 << 11 })],
    ['qdcount 0', buildQuery({ qdcount: 0, noQuestion: true })],
    ['qdcount 2', buildQuery({ qdcount: 2 })],
    ['ancount 1', buildQuery({ ancount: 1 })],
    ['nscount 1', buildQuery({ nscount: 1 })],
    ['arcount 2', buildQuery({ arcount: 2, extra: Buffer.concat([opt(1232), opt(1232)]) })],
    ['label of 64', buildQuery({ name: [long] })],
    ['compression pointer in the name', buildQuery({ rawName: Buffer.from([0xc0, 0x0c]) })],
    ['name > 255 octets', buildQuery({ name: Array.from({ length: 5 }, () => Buffer.alloc(60, 0x62)) })],
    ['truncated question', buildQuery().subarray(0, 17)],
    ['bytes after the question', buildQuery({ extra: Buffer.from([0]) })],
    ['arcount 1 but no record', buildQuery({ arcount: 1 })],
    ['EDNS version 1', buildQuery({ arcount: 1, extra: opt(1232, 1) })],
    ['OPT owner not root', buildQuery({ arcount: 1, extra: Buffer.concat([encodeName(['x']), opt(1232).subarray(1)]) })],
    ['additional record not OPT', buildQuery({ arcount: 1, extra: (() => { const b = opt(1232); b.writeUInt16BE(1, 1); return b; })() })],
    ['OPT option runs past the data', buildQuery({ arcount: 1, extra: opt(1232, 0, Buffer.from([0, 10, 0, 9, 1, 2, 3, 4])) })],
    ['bytes after the OPT', buildQuery({ arcount: 1, extra: Buffer.concat([opt(1232), Buffer.from([0])]) })],
  ];
  for (const [name, buf] of rejected) {
    test(`falls back on ${name}`, () => {
      assert.equal(new FastQuery().parse(buf), false);
    });
  }

  test('20 000 seeded mutations: never accepts what decodeQuery rejects, same fields when both accept', () => {
    const rng = seededRng(6006);
    const seeds = [buildQuery({ name: ['tasks', 'web'] }), buildQuery({ arcount: 1, extra: opt(1232, 0, cookie) }), buildQuery({ name: ['a', 'b', 'c'], arcount: 1, extra: opt(512) })];
    const f = new FastQuery();
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + Math.floor(rng() * 3);
      for (let k = 0; k < flips; k++) b[Math.floor(rng() * b.length)] = Math.floor(rng() * 256);
      const cut = rng() < 0.1 ? b.subarray(0, Math.floor(rng() * b.length)) : b;
      if (!f.parse(cut)) continue;
      accepted++;
      const d = decodeQuery(cut);
      assert.ok(d.ok, `fast path accepted a packet decodeQuery rejects: ${cut.toString('hex')}`);
      assert.equal(f.nameEnd, d.query.nameEnd);
      assert.equal(f.questionEnd, d.query.questionEnd);
      assert.equal(f.qtype, d.query.qtype);
      assert.equal(f.qclass, d.query.qclass);
      assert.equal(f.edns, d.query.edns !== undefined);
      assert.equal(f.rd, d.query.rd);
      if (d.query.edns) assert.equal(f.udpSize, d.query.edns.udpSize);
    }
    assert.ok(accepted > 1000, `too few mutations stayed plain (${accepted}): the test would prove little`);
  });
});

describe('dns fast path in the handler', () => {
  test('a cache hit through the fast path equals the full path’s reply (ID, case, RD, EDNS size class)', () => {
    const registry = new DnsRegistry();
    registry.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2' }, 0);
    const h = new DnsHandler({ registry, forwarder: new Forwarder({ upstreams: [] }), defaultNetworks: ['app'] });
    const ask = (q: Buffer): Buffer => {
      let out: Buffer | undefined;
      h.handle(q, '127.0.0.1', 1, 'udp', (b) => (out = Buffer.from(b)));
      return out!;
    };
    const variants = [
      buildQuery({ id: 1, name: ['web'] }),
      buildQuery({ id: 2, name: ['WEB'], flags: 0 }),
      buildQuery({ id: 3, name: ['wEb'], arcount: 1, extra: opt(1232, 0, cookie) }),
      buildQuery({ id: 4, name: ['web'], arcount: 1, extra: opt(4096) }),
    ];
    // First round fills the cache through the full path; a fresh handler answers each variant uncached.
    const reference = variants.map((q) => {
      const fresh = new DnsHandler({ registry, forwarder: new Forwarder({ upstreams: [] }), defaultNetworks: ['app'] });
      let out: Buffer | undefined;
      fresh.handle(q, '127.0.0.1', 1, 'udp', (b) => (out = Buffer.from(b)));
      return out!;
    });
    variants.forEach((q) => ask(q));
    const hitsBefore = h.snapshot().cache.hits;
    variants.forEach((q, i) => assert.deepEqual(ask(q), reference[i], `variant ${i}`));
    assert.equal(h.snapshot().cache.hits - hitsBefore, variants.length);
  });
});
