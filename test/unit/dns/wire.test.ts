import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import DNS from 'dns2';
import { QTYPE, type DnsRecord } from '../../../src/core/dns/resolver.js';
import { encodeAnswer } from '../../../src/core/dns/answer.js';
import { decodeQuery, encodeError, encodeQueryError, patchReply, questionName, RCODE, responseLimit, sameQuestion, type Query } from '../../../src/core/dns/wire.js';
import { buildQuery, encodeName } from './helpers.js';

const { Packet } = DNS;

function dns2Query(name: string, type: number, edns?: number): Buffer {
  const p = new Packet();
  p.header.id = 0x1234;
  p.header.rd = 1;
  p.questions.push({ name, type, class: 1 } as never);
  if (edns) p.additionals.push((Packet.Resource.EDNS as unknown as (r: unknown[], o: object) => never)([], { udpPayloadSize: edns }));
  return p.toBuffer();
}

function ok(buf: Buffer): Query {
  const d = decodeQuery(buf);
  assert.ok(d.ok, JSON.stringify(d));
  return d.query;
}

function ips(n: number): DnsRecord[] {
  return Array.from({ length: n }, (_, i) => ({ type: QTYPE.A, data: `10.0.${i >> 8}.${i & 255}` }));
}

describe('dns wire: decoding queries', () => {
  test('a dns2-built query decodes (no EDNS, EDNS 4096)', () => {
    const q = ok(dns2Query('Web.App', QTYPE.A));
    assert.equal(q.id, 0x1234);
    assert.equal(q.rd, true);
    assert.equal(q.qtype, 1);
    assert.equal(q.qclass, 1);
    assert.equal(q.edns, undefined);
    const b = dns2Query('web', QTYPE.AAAA, 4096);
    const q2 = ok(b);
    assert.deepEqual(q2.edns, { udpSize: 4096, version: 0, dnssecOk: false });
    assert.equal(questionName(b, q2), 'web');
  });

  test('questionName lowercases and rejects unrepresentable labels', () => {
    const b = buildQuery({ name: ['WeB', 'ApP'], type: 0x41 });
    const q = ok(b);
    assert.equal(questionName(b, q), 'web.app');
    const dotted = buildQuery({ name: ['web.app'] });
    assert.equal(questionName(dotted, ok(dotted)), null);
    const bin = buildQuery({ name: [Buffer.from([0x77, 0x00, 0x65])] });
    assert.equal(questionName(bin, ok(bin)), null);
    const root = buildQuery({ name: [] });
    assert.equal(questionName(root, ok(root)), '');
  });

  const optRR = (opts: { version?: number; udp?: number; rdata?: Buffer; owner?: Buffer } = {}): Buffer => {
    const rd = opts.rdata ?? Buffer.alloc(0);
    const b = Buffer.alloc(11 + rd.length + (opts.owner ? opts.owner.length - 1 : 0));
    let p = 0;
    if (opts.owner) p += opts.owner.copy(b, 0);
    else b[p++] = 0;
    b.writeUInt16BE(41, p);
    b.writeUInt16BE(opts.udp ?? 1232, p + 2);
    b.writeUInt32BE(((opts.version ?? 0) << 16) >>> 0, p + 4);
    b.writeUInt16BE(rd.length, p + 8);
    rd.copy(b, p + 10);
    return b;
  };

  const cases: [string, Buffer, 'drop' | number][] = [
    ['empty', Buffer.alloc(0), 'drop'],
    ['short header', Buffer.alloc(11), 'drop'],
    ['QR set', buildQuery({ flags: 0x8100 }), 'drop'],
    ['opcode IQUERY', buildQuery({ flags: 0x0800 }), RCODE.NOTIMP],
    ['opcode UPDATE', buildQuery({ flags: 5 << 11 }), RCODE.NOTIMP],
    ['qdcount 0', buildQuery({ qdcount: 0, noQuestion: true }), RCODE.FORMERR],
    ['qdcount 2', buildQuery({ qdcount: 2 }), RCODE.FORMERR],
    ['ancount 1', buildQuery({ ancount: 1 }), RCODE.FORMERR],
    ['truncated question', buildQuery({}).subarray(0, 20), RCODE.FORMERR],
    ['no qtype', buildQuery({}).subarray(0, 12 + 5), RCODE.FORMERR],
    ['label 64 (type 01)', buildQuery({ rawName: Buffer.concat([Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0])]) }), RCODE.FORMERR],
    ['label type 10', buildQuery({ rawName: Buffer.from([0x80, 0]) }), RCODE.FORMERR],
    ['name > 255', buildQuery({ name: Array.from({ length: 5 }, () => 'a'.repeat(60)) }), RCODE.FORMERR],
    ['name of exactly 255', buildQuery({ name: [...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'a'.repeat(61)] }), 0],
    ['pointer loop in question', buildQuery({ rawName: Buffer.from([0xc0, 12]) }), RCODE.FORMERR],
    ['pointer into header', buildQuery({ rawName: Buffer.from([1, 0x61, 0xc0, 2]) }), RCODE.FORMERR],
    ['pointer out of bounds (additional)', buildQuery({ arcount: 1, extra: Buffer.from([0xff, 0xff]) }), RCODE.FORMERR],
    ['pointer forward (additional)', buildQuery({ arcount: 1, extra: Buffer.concat([Buffer.from([0xc0, 40]), Buffer.alloc(30)]) }), RCODE.FORMERR],
    ['OPT owner not root', buildQuery({ arcount: 1, extra: optRR({ owner: Buffer.from([1, 0x61, 0]) }) }), RCODE.FORMERR],
    ['two OPTs', buildQuery({ arcount: 2, extra: Buffer.concat([optRR(), optRR()]) }), RCODE.FORMERR],
    ['OPT option overruns', buildQuery({ arcount: 1, extra: optRR({ rdata: Buffer.from([0, 8, 0, 9, 1, 2]) }) }), RCODE.FORMERR],
    ['OPT rdata overruns packet', buildQuery({ arcount: 1, extra: optRR().subarray(0, 10) }), RCODE.FORMERR],
    ['arcount lies', buildQuery({ arcount: 3, extra: optRR() }), RCODE.FORMERR],
    ['trailing bytes', buildQuery({ extra: Buffer.from([1, 2, 3]) }), RCODE.FORMERR],
    ['EDNS version 1', buildQuery({ arcount: 1, extra: optRR({ version: 1 }) }), RCODE.BADVERS],
    ['EDNS ok with option', buildQuery({ arcount: 1, extra: optRR({ rdata: Buffer.from([0, 10, 0, 2, 1, 2]) }) }), 0],
    ['EDNS udp size 100 reads as 512', buildQuery({ arcount: 1, extra: optRR({ udp: 100 }) }), 0],
    ['other additional record (compressed owner) skipped', buildQuery({ arcount: 1, extra: Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]), Buffer.alloc(4)]) }), 0],
  ];
  for (const [name, buf, want] of cases) {
    test(`${name} → ${want === 'drop' ? 'drop' : want === 0 ? 'ok' : `rcode ${want}`}`, () => {
      const d = decodeQuery(buf);
      if (want === 'drop') assert.ok(!d.ok && d.drop, JSON.stringify(d));
      else if (want === 0) assert.ok(d.ok, JSON.stringify(d));
      else assert.ok(!d.ok && !d.drop && d.rcode === want, JSON.stringify(d));
    });
  }

  test('error replies parse with dns2: FORMERR header only, BADVERS carries OPT with extended rcode', () => {
    const f = Packet.parse(encodeError(0xbeef, 0x0100, RCODE.FORMERR));
    assert.equal(f.header.id, 0xbeef);
    assert.equal(f.header.qr, 1);
    assert.equal(f.header.rcode, RCODE.FORMERR);
    assert.equal(f.header.rd, 1);
    const bv = encodeError(7, 0, RCODE.BADVERS);
    assert.equal(bv[3]! & 0xf, 0);
    const p = Packet.parse(bv);
    assert.equal(p.header.rcode, 16);
    const ni = Packet.parse(encodeError(7, 2 << 11, RCODE.NOTIMP));
    assert.equal(ni.header.opcode, 2);
    assert.equal(ni.header.rcode, RCODE.NOTIMP);
  });
});

describe('dns wire: encoding answers (checked by dns2’s decoder)', () => {
  test('A answers: question echoed with its case, owner compressed to the question, AA/RA/RD, TTL', () => {
    const qb = dns2Query('WeB.aPp', QTYPE.A, 1232);
    const q = ok(qb);
    const e = encodeAnswer({ query: qb, q, rcode: 0, records: ips(3), ttlSec: 5, maxSize: responseLimit(q, false), ednsUdpSize: 1232 });
    assert.equal(e.truncated, false);
    assert.equal(e.answers, 3);
    // every owner name is the pointer 0xC00C
    for (const off of e.aOffsets) assert.deepEqual([...e.buf.subarray(off - 12, off - 10)], [0xc0, 0x0c]);
    const p = Packet.parse(e.buf);
    assert.equal(p.header.id, 0x1234);
    assert.equal(p.header.qr, 1);
    assert.equal(p.header.aa, 1);
    assert.equal(p.header.ra, 1);
    assert.equal(p.header.rd, 1);
    assert.equal(p.header.tc, 0);
    assert.equal(p.questions[0]!.name, 'WeB.aPp');
    assert.deepEqual(p.answers.map((a) => [a.name, a.type, a.ttl, (a as unknown as { address: string }).address]), ips(3).map((r) => ['WeB.aPp', 1, 5, r.data]));
    const opt = p.additionals.find((a) => a.type === 41) as unknown as { class: number };
    assert.equal(opt.class, 1232);
  });

  test('PTR answer and NODATA', () => {
    const qb = dns2Query('2.0.0.10.in-addr.arpa', QTYPE.PTR);
    const q = ok(qb);
    const e = encodeAnswer({ query: qb, q, rcode: 0, records: [{ type: QTYPE.PTR, data: 'web.1.abc.app' }], ttlSec: 5, maxSize: 512, ednsUdpSize: 1232 });
    const p = Packet.parse(e.buf);
    assert.equal((p.answers[0] as unknown as { domain: string }).domain, 'web.1.abc.app');
    assert.equal(p.additionals.length, 0);
    const nd = Packet.parse(encodeAnswer({ query: qb, q, rcode: 0, records: [], ttlSec: 5, maxSize: 512, ednsUdpSize: 1232 }).buf);
    assert.equal(nd.header.rcode, 0);
    assert.equal(nd.answers.length, 0);
  });

  test('PTR targets compress against earlier names', () => {
    const qb = dns2Query('x.in-addr.arpa', QTYPE.PTR);
    const q = ok(qb);
    const e = encodeAnswer({ query: qb, q, rcode: 0, records: [{ type: QTYPE.PTR, data: 'a.app' }, { type: QTYPE.PTR, data: 'b.app' }], ttlSec: 1, maxSize: 512, ednsUdpSize: 512 });
    const p = Packet.parse(e.buf);
    assert.deepEqual(p.answers.map((a) => (a as unknown as { domain: string }).domain), ['a.app', 'b.app']);
    assert.ok(e.buf.length < 12 + 20 + 2 * (12 + 7));
  });

  test('truncation: UDP without EDNS ≤ 512 with whole records and TC; EDNS size honoured and capped; TCP whole', () => {
    const plain = dns2Query('tasks.web', QTYPE.A);
    const q = ok(plain);
    const all = ips(100);
    const u = encodeAnswer({ query: plain, q, rcode: 0, records: all, ttlSec: 5, maxSize: responseLimit(q, false), ednsUdpSize: 1232 });
    assert.ok(u.truncated);
    assert.ok(u.buf.length <= 512);
    assert.equal(u.answers, Math.floor((512 - 12 - 15) / 16));
    const pu = Packet.parse(u.buf);
    assert.equal(pu.header.tc, 1);
    assert.equal(pu.answers.length, u.answers);
    assert.deepEqual(pu.answers.map((a) => (a as unknown as { address: string }).address), all.slice(0, u.answers).map((r) => r.data));

    const big = dns2Query('tasks.web', QTYPE.A, 4096);
    const qe = ok(big);
    assert.equal(responseLimit(qe, false), 1232);
    assert.equal(responseLimit(qe, false, 4096), 4096);
    const ue = encodeAnswer({ query: big, q: qe, rcode: 0, records: all, ttlSec: 5, maxSize: responseLimit(qe, false), ednsUdpSize: 1232 });
    assert.ok(ue.truncated && ue.buf.length <= 1232 && ue.buf.length > 1232 - 16);
    const pe = Packet.parse(ue.buf);
    assert.equal(pe.additionals.filter((a) => a.type === 41).length, 1); // OPT kept when truncating

    const t = encodeAnswer({ query: plain, q, rcode: 0, records: all, ttlSec: 5, maxSize: responseLimit(q, true), ednsUdpSize: 1232 });
    assert.equal(t.truncated, false);
    assert.equal(Packet.parse(t.buf).answers.length, 100);

    const none = encodeAnswer({ query: plain, q, rcode: 0, records: all, ttlSec: 5, maxSize: 20, ednsUdpSize: 1232 });
    assert.ok(none.truncated);
    assert.equal(none.answers, 0);
  });

  test('patchReply sets ID, RD and the new question case; sameQuestion matches case-insensitively', () => {
    const a = dns2Query('web.app', QTYPE.A);
    const qa = ok(a);
    const reply = encodeAnswer({ query: a, q: qa, rcode: 0, records: ips(1), ttlSec: 5, maxSize: 512, ednsUdpSize: 512 }).buf;
    const b = buildQuery({ id: 0x4242, flags: 0, name: ['WEB', 'APP'] });
    const qb = ok(b);
    patchReply(reply, b, qb);
    const p = Packet.parse(reply);
    assert.equal(p.header.id, 0x4242);
    assert.equal(p.header.rd, 0);
    assert.equal(p.questions[0]!.name, 'WEB.APP');
    assert.ok(sameQuestion(reply, a, qa));
    assert.ok(!sameQuestion(a, a, qa)); // not a response
    const other = encodeAnswer({ query: dns2Query('web.apq', 1), q: ok(dns2Query('web.apq', 1)), rcode: 0, records: [], ttlSec: 5, maxSize: 512, ednsUdpSize: 512 }).buf;
    assert.ok(!sameQuestion(other, a, qa));
  });

  test('encodeQueryError echoes the question (SERVFAIL / REFUSED)', () => {
    const a = dns2Query('x.example', QTYPE.A, 1232);
    const p = Packet.parse(encodeQueryError(a, ok(a), RCODE.SERVFAIL, 1232));
    assert.equal(p.header.rcode, RCODE.SERVFAIL);
    assert.equal(p.questions[0]!.name, 'x.example');
    assert.equal(p.additionals.length, 1);
  });

  test('encodeName helper matches dns2 for a round trip sanity check', () => {
    assert.deepEqual([...encodeName(['a', 'bc'])], [1, 0x61, 2, 0x62, 0x63, 0]);
  });
});
