import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import DNS from 'dns2';
import { seededRng } from '../../../src/core/clock.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { decodeQuery, RCODE } from '../../../src/core/dns/wire.js';
import { AnswerCache, ipPool, netKey, questionHash, shuffleInto } from '../../../src/adapters/dns-server/cache.js';
import { Forwarder } from '../../../src/adapters/dns-server/forwarder.js';
import { DnsHandler, type NetworksOf } from '../../../src/adapters/dns-server/handler.js';
import { buildQuery, optRecord } from './helpers.js';

const { Packet } = DNS;

function setup(opts: { networksOf?: NetworksOf; tasks?: number; cacheMaxEntries?: number } = {}) {
  const registry = new DnsRegistry();
  registry.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2' }, 0);
  registry.upsertService({ name: 'rr', network: 'app', mode: 'dnsrr' }, 0);
  for (let i = 1; i <= (opts.tasks ?? 3); i++) registry.upsertTask({ name: `rr.${i}.x`, service: 'rr', network: 'app', ip: `10.0.1.${i}`, healthy: true, owner: 'n1' }, 0);
  const forwarder = new Forwarder({ upstreams: [] });
  const h = new DnsHandler({ registry, forwarder, defaultNetworks: ['app'], networksOf: opts.networksOf, rng: seededRng(42), cacheMaxEntries: opts.cacheMaxEntries });
  const ask = (q: Buffer, transport: 'udp' | 'tcp' = 'udp'): Buffer | undefined => {
    let out: Buffer | undefined;
    h.handle(q, '127.0.0.1', 5353, transport, (b) => (out = Buffer.from(b)));
    return out;
  };
  return { registry, h, ask };
}

const addresses = (b: Buffer | undefined): string[] => Packet.parse(b!).answers.map((a) => (a as unknown as { address: string }).address);

describe('dns handler (fast path + resolver + codec)', () => {
  test('answers, caches, and drops the cache as soon as the table changes (scale 3 → 1)', () => {
    const { registry, h, ask } = setup();
    const q = buildQuery({ name: ['tasks', 'rr'] });
    assert.deepEqual(addresses(ask(q)).sort(), ['10.0.1.1', '10.0.1.2', '10.0.1.3']);
    assert.deepEqual(addresses(ask(q)).sort(), ['10.0.1.1', '10.0.1.2', '10.0.1.3']);
    assert.equal(h.snapshot().cache.hits, 1);
    registry.removeTask('app', 'rr.2.x');
    registry.removeTask('app', 'rr.3.x');
    assert.deepEqual(addresses(ask(q)), ['10.0.1.1']);
    const s = h.snapshot();
    assert.equal(s.cache.flushes, 1);
    assert.equal(s.cache.hits, 1);
    registry.removeService('app', 'rr');
    registry.removeTask('app', 'rr.1.x');
    // name gone → not ours → forwarded; no upstream → SERVFAIL (never a stale cached answer)
    const gone = Packet.parse(ask(q)!);
    assert.equal(gone.header.rcode, RCODE.SERVFAIL);
  });

  test('cached replies carry the new ID and the asker’s letter case', () => {
    const { ask } = setup();
    ask(buildQuery({ id: 1, name: ['web'] }));
    const r = Packet.parse(ask(buildQuery({ id: 2, name: ['WeB'] }))!);
    assert.equal(r.header.id, 2);
    assert.equal(r.questions[0]!.name, 'WeB');
    assert.equal(r.answers[0]!.name, 'WeB');
    assert.equal(r.answers[0]!.ttl, 5);
  });

  test('dnsrr order is shuffled per query, cached or not', () => {
    const { ask } = setup({ tasks: 4 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(addresses(ask(buildQuery({ name: ['rr'] }))).join(' '));
    assert.equal(seen.size, 24);
  });

  test('a truncated UDP dnsrr answer still hands out every address over time; TCP has them all', () => {
    const { ask } = setup({ tasks: 80 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const b = ask(buildQuery({ name: ['rr'] }))!;
      assert.ok(b.length <= 512);
      assert.equal(Packet.parse(b).header.tc, 1);
      for (const a of addresses(b)) seen.add(a);
    }
    assert.equal(seen.size, 80);
    const t = ask(buildQuery({ name: ['rr'] }), 'tcp')!;
    assert.equal(Packet.parse(t).header.tc, 0);
    assert.equal(addresses(t).length, 80);
    const e = ask(buildQuery({ name: ['rr'], arcount: 1, extra: optRecord(4096) }))!;
    assert.equal(addresses(e).length, Math.floor((1232 - 12 - 7 - 11) / 16)); // capped at our 1232, not the asked 4096
  });

  test('NODATA for AAAA of a known name; FORMERR/NOTIMP/BADVERS/drops counted', () => {
    const { h, ask } = setup();
    const nd = Packet.parse(ask(buildQuery({ name: ['web'], type: 28 }))!);
    assert.equal(nd.header.rcode, 0);
    assert.equal(nd.answers.length, 0);
    assert.equal(ask(Buffer.alloc(5)), undefined);
    assert.equal(ask(buildQuery({ flags: 0x8000 })), undefined);
    assert.equal(Packet.parse(ask(buildQuery({ qdcount: 2 }))!).header.rcode, RCODE.FORMERR);
    assert.equal(Packet.parse(ask(buildQuery({ flags: 4 << 11 }))!).header.rcode, RCODE.NOTIMP);
    assert.equal(Packet.parse(ask(buildQuery({ arcount: 1, extra: optRecord(1232, 1) }))!).header.rcode, 16);
    const s = h.snapshot();
    assert.deepEqual(s.drops, { 'short-header': 1, 'qr-set': 1 });
    assert.deepEqual(s.answers, { NOERROR: 1, FORMERR: 1, NOTIMP: 1, BADVERS: 1 });
    assert.equal(s.local.nodata, 1);
    assert.equal(s.queries.udp, 6);
    assert.equal(s.latency.count, 4);
  });

  test('unknown source → REFUSED; networks come from the injected mapping', () => {
    const { ask } = setup({ networksOf: (addr) => (addr === '127.0.0.1' ? undefined : ['app']) });
    assert.equal(Packet.parse(ask(buildQuery({ name: ['web'] }))!).header.rcode, RCODE.REFUSED);
    const other = setup({ networksOf: () => ['other'] });
    // not registered on 'other' → forward → no upstream → SERVFAIL
    assert.equal(Packet.parse(other.ask(buildQuery({ name: ['web'] }))!).header.rcode, RCODE.SERVFAIL);
  });

  test('a cache bound of 0 still answers (no caching)', () => {
    const { h, ask } = setup({ cacheMaxEntries: 0 });
    for (let i = 0; i < 3; i++) assert.deepEqual(addresses(ask(buildQuery({ name: ['web'] }))), ['10.0.0.2']);
    assert.equal(h.snapshot().cache.hits, 0);
  });

  test('bad config is refused', () => {
    const registry = new DnsRegistry();
    const forwarder = new Forwarder({ upstreams: [] });
    assert.throws(() => new DnsHandler({ registry, forwarder, ttlSec: -1 }), /ttlSec/);
    assert.throws(() => new DnsHandler({ registry, forwarder, maxUdpPayload: 100 }), /maxUdpPayload/);
  });
});

describe('answer cache', () => {
  test('evicts the oldest entry when full, flushes on a new generation, survives hash collisions', () => {
    const c = new AnswerCache(2, seededRng(1));
    const net = netKey(['app']);
    const qa = buildQuery({ name: ['a'] });
    const qb = buildQuery({ name: ['b'] });
    const qc = buildQuery({ name: ['c'] });
    const dq = (b: Buffer) => {
      const d = decodeQuery(b);
      assert.ok(d.ok);
      return d.query;
    };
    const e = (n: number) => ({ buf: Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0, 0, 1, 0, 1]), Buffer.from([n])]), rcode: 0, pool: undefined, aOffsets: [] });
    c.set(1, net, 512, qa, dq(qa), 1, e(1));
    c.set(2, net, 512, qb, dq(qb), 1, e(2));
    c.set(3, net, 512, qc, dq(qc), 1, e(3));
    assert.equal(c.get(1, net, 512, qa, dq(qa), 1), undefined);
    assert.equal(c.get(3, net, 512, qc, dq(qc), 1)!.at(-1), 3);
    assert.equal(c.stats.evictions, 1);
    // same hash, different question / size class / networks: a compare, never a wrong answer
    assert.equal(c.get(3, net, 512, qb, dq(qb), 1), undefined);
    assert.equal(c.get(3, net, 1232, qc, dq(qc), 1), undefined);
    assert.equal(c.get(3, netKey(['other']), 512, qc, dq(qc), 1), undefined);
    assert.equal(c.get(2, net, 512, qb, dq(qb), 1)!.at(-1), 2);
    // the copy is patched with the asker's ID
    const qc2 = buildQuery({ id: 0x5555, name: ['C'] });
    const hit = c.get(3, net, 512, qc2, dq(qc2), 1)!;
    assert.equal(hit.readUInt16BE(0), 0x5555);
    assert.equal(c.get(3, net, 512, qc, dq(qc), 2), undefined);
    assert.equal(c.size, 0);
    assert.equal(c.stats.flushes, 1);
  });

  test('questionHash ignores name case only', () => {
    const net = netKey(['app']);
    const h = (b: Buffer, limit = 512) => {
      const d = decodeQuery(b);
      assert.ok(d.ok);
      return questionHash(b, d.query, limit, net);
    };
    assert.equal(h(buildQuery({ name: ['WEB'] })), h(buildQuery({ name: ['web'] })));
    assert.notEqual(h(buildQuery({ name: ['web'], type: 0x41 })), h(buildQuery({ name: ['web'], type: 0x61 })));
    assert.notEqual(h(buildQuery({ name: ['web'] })), h(buildQuery({ name: ['web'] }), 1232));
  });

  test('shuffleInto draws each address into the first slot about equally often', () => {
    const pool = ipPool(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    const rng = seededRng(3);
    const counts = new Map<number, number>();
    const out = Buffer.alloc(8);
    for (let i = 0; i < 8000; i++) {
      shuffleInto(out, pool, [0, 4], rng);
      const first = out.readUInt32BE(0);
      assert.notEqual(first, out.readUInt32BE(4));
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    assert.equal(counts.size, 4);
    for (const n of counts.values()) assert.ok(n > 1800 && n < 2200, String(n));
  });
});
