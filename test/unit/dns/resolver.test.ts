import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { explain, normalizeName, parseReverseV4, QCLASS, QTYPE, resolve, reverseNameV4, shuffleInPlace, type Resolution } from '../../../src/core/dns/resolver.js';

function fixture(): DnsRegistry {
  const r = new DnsRegistry();
  r.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2', aliases: ['www'], owner: 'n1' }, 10);
  r.upsertService({ name: 'rr', network: 'app', mode: 'dnsrr' }, 10);
  r.upsertService({ name: 'empty', network: 'app', mode: 'dnsrr' }, 10);
  r.upsertService({ name: 'novip', network: 'app', mode: 'vip' }, 10);
  r.upsertService({ name: 'db', network: 'data', mode: 'vip', vip: '10.1.0.2' }, 10);
  const t = (name: string, service: string, ip: string, healthy = true, network = 'app') => r.upsertTask({ name, service, ip, healthy, network, owner: 'n2' }, 20);
  t('web.1.aaa', 'web', '10.0.0.3');
  t('web.2.bbb', 'web', '10.0.0.4');
  t('web.3.ccc', 'web', '10.0.0.5', false);
  t('rr.1.aaa', 'rr', '10.0.0.12');
  t('rr.2.bbb', 'rr', '10.0.0.10');
  t('rr.3.ccc', 'rr', '10.0.0.11');
  t('rr.4.ddd', 'rr', '10.0.0.13', false);
  t('orphan.1.x', 'orphan', '10.0.0.20'); // service entry not yet gossiped
  t('db.1.aaa', 'db', '10.1.0.3', true, 'data');
  return r;
}

function ips(r: Resolution): string[] {
  assert.equal(r.kind, 'answer', JSON.stringify(r));
  return r.kind === 'answer' ? r.records.map((x) => x.data) : [];
}

describe('dns resolver', () => {
  const reg = fixture();
  const APP = ['app'];
  const A = QTYPE.A;
  const IN = QCLASS.IN;

  const answers: [string, string[], number, string[]][] = [
    ['vip service', APP, A, ['10.0.0.2']],
    ['WEB.', APP, A, ['10.0.0.2']],
    ['www', APP, A, ['10.0.0.2']],
    ['web.app', APP, A, ['10.0.0.2']],
    ['Web.App.', APP, A, ['10.0.0.2']],
    ['tasks.web', APP, A, ['10.0.0.3', '10.0.0.4']],
    ['tasks.www', APP, A, ['10.0.0.3', '10.0.0.4']],
    ['tasks.web.app', APP, A, ['10.0.0.3', '10.0.0.4']],
    ['rr', APP, A, ['10.0.0.10', '10.0.0.11', '10.0.0.12']],
    ['tasks.rr', APP, A, ['10.0.0.10', '10.0.0.11', '10.0.0.12']],
    ['web.1.aaa', APP, A, ['10.0.0.3']],
    ['web.3.ccc', APP, A, ['10.0.0.5']], // a task name answers even when unhealthy
    ['web.1.aaa.app', APP, A, ['10.0.0.3']],
    ['tasks.orphan', APP, A, ['10.0.0.20']],
    ['db', ['app', 'data'], A, ['10.1.0.2']],
    ['db.data', ['app', 'data'], A, ['10.1.0.2']],
    ['web', APP, QTYPE.ANY, ['10.0.0.2']],
  ];
  for (const [q, nets, type, want] of answers.map(([n, a, b, c]) => [n === 'vip service' ? 'web' : n, a, b, c] as const)) {
    test(`${q} (${nets.join(',')}, type ${type}) → ${want.join(' ')}`, () => {
      assert.deepEqual(ips(resolve(reg, nets, q, type, IN)), want);
    });
  }

  const nodata: [string, number, string[]][] = [
    ['web', QTYPE.AAAA, APP],
    ['web', QTYPE.MX, APP],
    ['tasks.web', QTYPE.AAAA, APP],
    ['empty', A, APP], // dnsrr without healthy tasks: NODATA, not NXDOMAIN (moby#53141)
    ['novip', A, APP],
    ['tasks.empty', A, APP],
    ['2.0.0.10.in-addr.arpa', A, APP],
  ];
  for (const [q, type, nets] of nodata) {
    test(`${q} type ${type} → NODATA`, () => assert.equal(resolve(reg, nets, q, type, IN).kind, 'nodata'));
  }

  const forwards: [string | null, number, number, string[]][] = [
    ['example.com', A, IN, APP],
    ['db', A, IN, APP], // other network, sandbox not on it
    ['db.data', A, IN, APP],
    ['web.data', A, IN, ['app', 'data']], // web is not on data
    ['tasks.nothing', A, IN, APP],
    ['web', A, QCLASS.CH, APP],
    [null, A, IN, APP],
    ['', A, IN, APP],
    ['web', A, IN, ['unknown-net']],
    ['9.9.0.10.in-addr.arpa', QTYPE.PTR, IN, APP],
    ['1.2.3.in-addr.arpa', QTYPE.PTR, IN, APP],
  ];
  for (const [q, type, cls, nets] of forwards) {
    test(`${String(q)} class ${cls} on ${nets.join(',')} → forward`, () => assert.equal(resolve(reg, nets, q, type, cls).kind, 'forward'));
  }

  test('PTR for a VIP and a task IP', () => {
    const v = resolve(reg, APP, '2.0.0.10.in-addr.arpa.', QTYPE.PTR, IN);
    assert.deepEqual(v.kind === 'answer' && v.records, [{ type: QTYPE.PTR, data: 'web.app' }]);
    const t = resolve(reg, APP, reverseNameV4('10.0.0.12'), QTYPE.PTR, IN);
    assert.deepEqual(t.kind === 'answer' && t.records, [{ type: QTYPE.PTR, data: 'rr.1.aaa.app' }]);
  });

  test('dnsrr answers are marked shuffle and shuffled with an injected rng; vip answers are not', () => {
    const a = resolve(reg, APP, 'rr', A, IN);
    assert.ok(a.kind === 'answer' && a.shuffle);
    const b = resolve(reg, APP, 'web', A, IN);
    assert.ok(b.kind === 'answer' && !b.shuffle);
    const rng = seededRng(7);
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const r = resolve(reg, APP, 'rr', A, IN, { rng });
      seen.add(ips(r).join(','));
      assert.deepEqual(ips(r).sort(), ['10.0.0.10', '10.0.0.11', '10.0.0.12']);
    }
    assert.equal(seen.size, 6);
  });

  test('scale down is visible at once', () => {
    const r = fixture();
    r.removeTask('app', 'rr.1.aaa');
    r.upsertTask({ name: 'rr.2.bbb', service: 'rr', ip: '10.0.0.10', healthy: false, network: 'app', owner: 'n2' }, 30);
    assert.deepEqual(ips(resolve(r, APP, 'tasks.rr', A, IN)), ['10.0.0.11']);
    r.removeOwner('n2');
    assert.equal(resolve(r, APP, 'tasks.rr', A, IN).kind, 'nodata');
    assert.deepEqual(ips(resolve(r, APP, 'web', A, IN)), ['10.0.0.2']); // the service entry is n1's
    r.removeOwner('n1');
    assert.equal(resolve(r, APP, 'web', A, IN).kind, 'forward');
  });

  test('explain names the registry entries, owners and ages', () => {
    const e = explain(reg, APP, 'web', A, 1010);
    assert.equal(e.outcome, 'answer');
    assert.deepEqual(e.records, [{ type: 1, data: '10.0.0.2' }]);
    assert.deepEqual(e.sources.map((s) => [s.kind, s.name, s.owner, s.ageMs]), [['service', 'web', 'n1', 1000]]);
    const t = explain(reg, APP, 'tasks.rr', A, 1020);
    assert.deepEqual(t.sources.map((s) => [s.kind, s.name, s.owner, s.ageMs]), [['service', 'rr', undefined, 1010], ['task', 'rr.1.aaa', 'n2', 1000], ['task', 'rr.2.bbb', 'n2', 1000], ['task', 'rr.3.ccc', 'n2', 1000]]);
    assert.equal(explain(reg, APP, 'example.com', A, 0).outcome, 'forward');
    assert.equal(explain(reg, APP, 'web', QTYPE.AAAA, 0).outcome, 'nodata');
  });

  test('helpers', () => {
    assert.equal(normalizeName('A.b.'), 'a.b');
    assert.equal(parseReverseV4('4.3.2.1.in-addr.arpa'), '1.2.3.4');
    assert.equal(parseReverseV4('04.3.2.1.in-addr.arpa'), undefined);
    assert.equal(parseReverseV4('256.3.2.1.in-addr.arpa'), undefined);
    assert.equal(parseReverseV4('4.3.2.1.ip6.arpa'), undefined);
    assert.deepEqual(shuffleInPlace([1], seededRng(1)), [1]);
  });
});
