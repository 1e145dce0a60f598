/**
 * SRV records and stable slot names (issue 19 item 4): name shapes (table tests), the resolver's decisions
 * (answer / NODATA / NXDOMAIN / forward), the wire encoding (dns2 parses it; SRV targets uncompressed,
 * additional A records), and the fast-path cache dropping SRV/slot/NXDOMAIN answers on a table change.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import DNS from 'dns2';
import { seededRng } from '../../../../src/core/clock.js';
import { DnsRegistry, type TaskInput } from '../../../../src/core/dns/registry.js';
import { QCLASS, QTYPE, resolve, explain } from '../../../../src/core/dns/resolver.js';
import { parseSlotName, parseSrvName, slotFromTaskName } from '../../../../src/core/dns/srv.js';
import { applySnapshot, snapshotRegistry } from '../../../../src/core/dns/snapshot.js';
import { encodeAnswer } from '../../../../src/core/dns/answer.js';
import { decodeQuery, RCODE } from '../../../../src/core/dns/wire.js';
import { Forwarder } from '../../../../src/adapters/dns-server/forwarder.js';
import { DnsHandler } from '../../../../src/adapters/dns-server/handler.js';
import { taskInputOf } from '../../../../src/agent/dns/plan.js';
import type { EndpointRecord } from '../../../../src/core/endpoints.js';
import { buildQuery, encodeName, optRecord } from '../../dns/helpers.js';

const { Packet } = DNS;

describe('SRV and slot name shapes', () => {
  const srvCases: Array<[string, ReturnType<typeof parseSrvName>]> = [
    ['_80._tcp.web', { port: 80, proto: 'tcp', rest: 'web' }],
    ['_53._udp.dns.app', { port: 53, proto: 'udp', rest: 'dns.app' }],
    ['_http._tcp.web', { port: 80, proto: 'tcp', rest: 'web' }],
    ['_https._tcp.web', { port: 443, proto: 'tcp', rest: 'web' }],
    ['_65535._tcp.web', { port: 65535, proto: 'tcp', rest: 'web' }],
    ['_65536._tcp.web', undefined],
    ['_0._tcp.web', undefined],
    ['_080._tcp.web', undefined],
    ['_80._sctp.web', undefined],
    ['_ftp._tcp.web', undefined],
    ['_80._tcp.', undefined],
    ['_80._tcp', undefined],
    ['80._tcp.web', undefined],
    ['_constructor._tcp.web', undefined],
  ];
  for (const [name, want] of srvCases) test(`parseSrvName(${name})`, () => assert.deepEqual(parseSrvName(name), want));

  const slotCases: Array<[string, ReturnType<typeof parseSlotName>]> = [
    ['1.web', { slot: 1, rest: 'web' }],
    ['12.web.app', { slot: 12, rest: 'web.app' }],
    ['0.web', { slot: 0, rest: 'web' }],
    ['01.web', undefined],
    ['1.', undefined],
    ['web.1', undefined],
    ['99999999.web', undefined],
  ];
  for (const [name, want] of slotCases) test(`parseSlotName(${name})`, () => assert.deepEqual(parseSlotName(name), want));

  const nameCases: Array<[string, string, string, number | undefined]> = [
    ['web.1.abc', 'web', 'abc', 1],
    ['web.10000.abc', 'web', 'abc', 10000],
    ['my-web.3.0f9e', 'my-web', '0f9e', 3],
    // global task: <svc>.<node id>.<task id> (node ids are 24 hex chars, even all-decimal ones exceed the bound)
    ['web.4f2a9c0e11d3b7a85e6c2d10.abc', 'web', 'abc', undefined],
    ['web.123456789012345678901234.abc', 'web', 'abc', undefined],
    ['web.01.abc', 'web', 'abc', undefined],
    ['web.1.abc', 'web', 'abd', undefined],
    ['webx.1.abc', 'web', 'abc', undefined],
    ['ingress-sbox.n1', 'ingress-sbox', 'sbox-n1', undefined],
  ];
  for (const [name, svc, id, want] of nameCases) test(`slotFromTaskName(${name})`, () => assert.equal(slotFromTaskName(name, svc, id), want));
});

function task(name: string, ip: string, over: Partial<TaskInput> = {}): TaskInput {
  const [service, slot] = name.split('.');
  return { name, network: 'app', service: service!, ip, healthy: true, owner: 'n1', slot: Number(slot), ports: [{ proto: 'tcp', port: 80 }], ...over };
}

function registry(): DnsRegistry {
  const r = new DnsRegistry();
  r.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2', aliases: ['www'] }, 0);
  r.upsertTask(task('web.1.aaa', '10.0.1.1'), 0);
  r.upsertTask(task('web.2.bbb', '10.0.1.2', { ports: [{ proto: 'tcp', port: 80 }, { proto: 'tcp', port: 443 }, { proto: 'udp', port: 53 }] }), 0);
  r.upsertTask(task('web.3.ccc', '10.0.1.3', { healthy: false }), 0);
  r.upsertService({ name: 'agent', network: 'app', mode: 'vip', vip: '10.0.0.3' }, 0);
  r.upsertTask({ name: 'agent.4f2a9c0e11d3b7a85e6c2d10.ddd', network: 'app', service: 'agent', ip: '10.0.1.4', healthy: true, owner: 'n1', ports: [{ proto: 'tcp', port: 9000 }] }, 0);
  return r;
}

const ask = (r: DnsRegistry, name: string, type: number = QTYPE.A, nets: string[] = ['app']) => resolve(r, nets, name, type, QCLASS.IN);

describe('resolver: SRV and slot names', () => {
  test('_80._tcp.web: one SRV per healthy task on 80/tcp, slot order, target A in additional', () => {
    const r = ask(registry(), '_80._tcp.web', QTYPE.SRV);
    assert.equal(r.kind, 'answer');
    if (r.kind !== 'answer') return;
    assert.deepEqual(r.records, [
      { type: QTYPE.SRV, data: 'web.1.aaa.app', priority: 0, weight: 1, port: 80 },
      { type: QTYPE.SRV, data: 'web.2.bbb.app', priority: 0, weight: 1, port: 80 },
    ]);
    assert.deepEqual(r.additional, [{ name: 'web.1.aaa.app', type: QTYPE.A, data: '10.0.1.1' }, { name: 'web.2.bbb.app', type: QTYPE.A, data: '10.0.1.2' }]);
    assert.equal(r.shuffle, false);
  });

  test('aliases: _http/_https, the service alias, the .<network> suffix, ANY, case', () => {
    const reg = registry();
    const targets = (name: string, type: number = QTYPE.SRV): string[] => {
      const r = ask(reg, name, type);
      return r.kind === 'answer' ? r.records.map((x) => `${x.data}:${'port' in x ? x.port : ''}`) : [r.kind];
    };
    assert.deepEqual(targets('_http._tcp.web'), ['web.1.aaa.app:80', 'web.2.bbb.app:80']);
    assert.deepEqual(targets('_https._tcp.web'), ['web.2.bbb.app:443']);
    assert.deepEqual(targets('_443._tcp.web'), ['web.2.bbb.app:443']);
    assert.deepEqual(targets('_53._udp.web'), ['web.2.bbb.app:53']);
    assert.deepEqual(targets('_80._tcp.www'), ['web.1.aaa.app:80', 'web.2.bbb.app:80']);
    assert.deepEqual(targets('_80._tcp.web.app'), ['web.1.aaa.app:80', 'web.2.bbb.app:80']);
    assert.deepEqual(targets('_80._TCP.Web.'), ['web.1.aaa.app:80', 'web.2.bbb.app:80']);
    assert.deepEqual(targets('_80._tcp.web', QTYPE.ANY), ['web.1.aaa.app:80', 'web.2.bbb.app:80']);
    assert.deepEqual(targets('_9000._tcp.agent'), ['agent.4f2a9c0e11d3b7a85e6c2d10.ddd.app:9000']);
  });

  test('SRV names: A is NODATA; no healthy task is NODATA; no task on the port is NXDOMAIN; unknown service forwards', () => {
    const reg = registry();
    assert.equal(ask(reg, '_80._tcp.web', QTYPE.A).kind, 'nodata');
    assert.equal(ask(reg, '_53._tcp.web', QTYPE.SRV).kind, 'nxdomain');
    assert.equal(ask(reg, '_53._tcp.web', QTYPE.A).kind, 'nxdomain');
    assert.equal(ask(reg, '_80._tcp.nosuch', QTYPE.SRV).kind, 'forward');
    assert.equal(ask(reg, '_80._tcp.web.other', QTYPE.SRV).kind, 'forward');
    assert.equal(ask(reg, 'web', QTYPE.SRV).kind, 'nodata');
    reg.upsertTask(task('web.1.aaa', '10.0.1.1', { healthy: false }), 1);
    reg.upsertTask(task('web.2.bbb', '10.0.1.2', { healthy: false }), 1);
    const r = ask(reg, '_80._tcp.web', QTYPE.SRV);
    assert.equal(r.kind, 'nodata');
  });

  test('<slot>.<svc>: the slot task; NODATA while unhealthy; NXDOMAIN when no task holds it; global services have none', () => {
    const reg = registry();
    const a = (name: string, type: number = QTYPE.A): string => {
      const r = ask(reg, name, type);
      return r.kind === 'answer' ? r.records.map((x) => x.data).join(',') : r.kind;
    };
    assert.equal(a('1.web'), '10.0.1.1');
    assert.equal(a('2.WEB.'), '10.0.1.2');
    assert.equal(a('2.www'), '10.0.1.2');
    assert.equal(a('1.web.app'), '10.0.1.1');
    assert.equal(a('3.web'), 'nodata');
    assert.equal(a('1.web', QTYPE.AAAA), 'nodata');
    assert.equal(a('4.web'), 'nxdomain');
    assert.equal(a('0.web'), 'nxdomain');
    assert.equal(a('1.agent'), 'nxdomain');
    assert.equal(a('1.nosuch'), 'forward');
    assert.equal(a('01.web'), 'forward');
    // start-first update: two tasks in slot 1 while both run
    reg.upsertTask(task('web.1.eee', '10.0.1.5'), 2);
    assert.equal(a('1.web'), '10.0.1.1,10.0.1.5');
    // scale-down: the record goes → NXDOMAIN
    reg.removeTask('app', 'web.2.bbb');
    assert.equal(a('2.web'), 'nxdomain');
    const e = explain(reg, ['app'], '2.web', QTYPE.A, 10);
    assert.equal(e.outcome, 'nxdomain');
    assert.match(e.note, /no task of web in slot 2/);
  });

  test('exact names win over the derived forms; another network that knows the name wins over NXDOMAIN', () => {
    const reg = registry();
    reg.upsertService({ name: '1.web', network: 'app', mode: 'vip', vip: '10.0.0.9' }, 0);
    assert.deepEqual(ask(reg, '1.web'), { kind: 'answer', records: [{ type: QTYPE.A, data: '10.0.0.9' }], shuffle: false, sources: (ask(reg, '1.web') as { sources: unknown }).sources });
    reg.upsertService({ name: 'web', network: 'other', mode: 'vip', vip: '10.5.0.2' }, 0);
    reg.upsertTask({ ...task('web.7.zzz', '10.5.1.7'), network: 'other' }, 0);
    const r = ask(reg, '7.web', QTYPE.A, ['app', 'other']);
    assert.equal(r.kind === 'answer' && r.records[0]!.data, '10.5.1.7');
    const s = ask(reg, '_80._tcp.web', QTYPE.SRV, ['other', 'app']);
    assert.equal(s.kind === 'answer' && s.records[0]!.data, 'web.7.zzz.other');
  });

  test('registry: slot and ports are part of the entry (generation moves), validated, and survive a snapshot', () => {
    const reg = registry();
    const g = reg.generation;
    assert.equal(reg.upsertTask(task('web.1.aaa', '10.0.1.1'), 5), false);
    assert.equal(reg.upsertTask(task('web.1.aaa', '10.0.1.1', { ports: [{ proto: 'tcp', port: 80 }, { proto: 'tcp', port: 80 }] }), 5), false, 'duplicates merge');
    assert.equal(reg.generation, g);
    assert.equal(reg.upsertTask(task('web.1.aaa', '10.0.1.1', { ports: [{ proto: 'tcp', port: 8080 }] }), 5), true);
    assert.equal(reg.upsertTask(task('web.1.aaa', '10.0.1.1', { slot: 9, ports: [{ proto: 'tcp', port: 8080 }] }), 5), true);
    assert.ok(reg.generation > g);
    for (const bad of [{ slot: -1 }, { slot: 1.5 }, { slot: 2_000_000 }, { ports: [{ proto: 'sctp', port: 1 }] }, { ports: [{ proto: 'tcp', port: 0 }] }, { ports: [{ proto: 'tcp', port: 70000 }] }] as Partial<TaskInput>[]) {
      assert.throws(() => reg.upsertTask(task('web.5.x', '10.0.1.9', bad), 0), (e: { code?: string }) => e.code === 'MESHD_BAD_ARGUMENT', JSON.stringify(bad));
    }
    const replica = new DnsRegistry();
    applySnapshot(replica, structuredClone(snapshotRegistry(reg)), 0);
    assert.deepEqual(replica.tasks('app').map((t) => [t.name, t.slot, t.ports]), reg.tasks('app').map((t) => [t.name, t.slot, t.ports]));
    assert.equal(applySnapshot(replica, structuredClone(snapshotRegistry(reg)), 1), false);
  });

  test('agent feed: slot from the task name, target ports from the record', () => {
    const rec = { taskId: 'abc', taskName: 'web.2.abc', serviceName: 'web', networkName: 'app', ip: '10.0.1.2', state: 'running', ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress' }, { proto: 'udp', target: 53 }] } as unknown as EndpointRecord;
    assert.deepEqual(taskInputOf(rec, 'n2'), { name: 'web.2.abc', network: 'app', service: 'web', ip: '10.0.1.2', healthy: true, owner: 'n2', slot: 2, ports: [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 53 }] });
    const global = taskInputOf({ ...rec, taskName: 'web.4f2a9c0e11d3b7a85e6c2d10.abc', state: 'draining' }, 'n2');
    assert.equal(global.slot, undefined);
    assert.equal(global.healthy, false);
  });
});

interface SrvRr { name: string; type: number; priority: number; weight: number; port: number; target: string; address?: string }

describe('wire + handler: SRV answers', () => {
  const setup = () => {
    const reg = registry();
    const h = new DnsHandler({ registry: reg, forwarder: new Forwarder({ upstreams: [] }), defaultNetworks: ['app'], rng: seededRng(7) });
    const send = (q: Buffer): Buffer => {
      let out: Buffer | undefined;
      h.handle(q, '127.0.0.1', 5353, 'udp', (b) => (out = Buffer.from(b)));
      return out!;
    };
    return { reg, h, send };
  };

  test('dns2 parses the answer; targets uncompressed, additional owners point at them; cached and re-asked', () => {
    const { h, send } = setup();
    const q = buildQuery({ name: ['_80', '_tcp', 'web'], type: QTYPE.SRV, arcount: 1, extra: optRecord() });
    for (let i = 0; i < 2; i++) {
      const raw = send(q);
      const p = Packet.parse(raw);
      assert.equal(p.header.rcode, RCODE.NOERROR);
      assert.equal(p.header.aa, 1);
      const ans = p.answers as unknown as SrvRr[];
      assert.deepEqual(ans.map((a) => [a.name, a.type, a.priority, a.weight, a.port, a.target]), [
        ['_80._tcp.web', QTYPE.SRV, 0, 1, 80, 'web.1.aaa.app'],
        ['_80._tcp.web', QTYPE.SRV, 0, 1, 80, 'web.2.bbb.app'],
      ]);
      const add = (p.additionals as unknown as SrvRr[]).filter((a) => a.type === QTYPE.A);
      assert.deepEqual(add.map((a) => [a.name, a.address]), [['web.1.aaa.app', '10.0.1.1'], ['web.2.bbb.app', '10.0.1.2']]);
      // RFC 2782: the target is written label by label (no 0xC0 pointer inside an SRV RDATA)
      assert.ok(raw.indexOf(encodeName(['web', '1', 'aaa', 'app'])) > 0, 'SRV target written in full');
      assert.ok(raw.indexOf(encodeName(['web', '2', 'bbb', 'app'])) > 0, 'SRV target written in full');
    }
    assert.equal(h.snapshot().cache.hits, 1);
  });

  test('NXDOMAIN for a gone slot is cached and dropped on the next table change (slot comes back)', () => {
    const { reg, h, send } = setup();
    const q = buildQuery({ name: ['4', 'web'] });
    assert.equal(Packet.parse(send(q)).header.rcode, RCODE.NXDOMAIN);
    assert.equal(Packet.parse(send(q)).header.rcode, RCODE.NXDOMAIN);
    assert.equal(h.snapshot().cache.hits, 1);
    assert.equal(h.snapshot().local.nxdomain, 2);
    reg.upsertTask(task('web.4.fff', '10.0.1.6'), 1);
    const back = Packet.parse(send(q));
    assert.equal(back.header.rcode, RCODE.NOERROR);
    assert.deepEqual(back.answers.map((a) => (a as unknown as { address: string }).address), ['10.0.1.6']);
    // and SRV follows the same table change
    const srv = Packet.parse(send(buildQuery({ name: ['_http', '_tcp', 'web'], type: QTYPE.SRV })));
    assert.equal(srv.answers.length, 3);
    reg.removeTask('app', 'web.1.aaa');
    assert.equal(Packet.parse(send(buildQuery({ name: ['_http', '_tcp', 'web'], type: QTYPE.SRV }))).answers.length, 2);
  });

  test('UDP limit: whole SRV records then TC; additional records that do not fit are left out without TC', () => {
    const reg = new DnsRegistry();
    reg.upsertService({ name: 'big', network: 'app', mode: 'dnsrr' }, 0);
    for (let i = 1; i <= 40; i++) reg.upsertTask({ name: `big.${i}.task-with-a-long-id-${i}`, network: 'app', service: 'big', ip: `10.0.2.${i}`, healthy: true, owner: 'n1', slot: i, ports: [{ proto: 'tcp', port: 80 }] }, 0);
    const r = resolve(reg, ['app'], '_80._tcp.big', QTYPE.SRV, QCLASS.IN);
    assert.equal(r.kind, 'answer');
    if (r.kind !== 'answer') return;
    const qbuf = buildQuery({ name: ['_80', '_tcp', 'big'], type: QTYPE.SRV });
    const d = decodeQuery(qbuf);
    assert.ok(d.ok);
    if (!d.ok) return;
    const small = encodeAnswer({ query: qbuf, q: d.query, rcode: 0, records: r.records, additional: r.additional!, ttlSec: 5, maxSize: 512, ednsUdpSize: 1232 });
    assert.ok(small.truncated && small.buf.length <= 512);
    const ps = Packet.parse(small.buf);
    assert.equal(ps.answers.length, small.answers);
    assert.equal(ps.additionals.length, 0);
    // all 40 answers fit in 2400 bytes but not all their additionals: no TC, fewer additionals
    const mid = encodeAnswer({ query: qbuf, q: d.query, rcode: 0, records: r.records, additional: r.additional!, ttlSec: 5, maxSize: 2400, ednsUdpSize: 1232 });
    const pm = Packet.parse(mid.buf);
    assert.equal(mid.truncated, false);
    assert.equal(pm.answers.length, 40);
    assert.ok(pm.additionals.length > 0 && pm.additionals.length < 40, String(pm.additionals.length));
    assert.ok(mid.buf.length <= 2400);
    const tcp = Packet.parse(encodeAnswer({ query: qbuf, q: d.query, rcode: 0, records: r.records, additional: r.additional!, ttlSec: 5, maxSize: 65535, ednsUdpSize: 1232 }).buf);
    assert.equal(tcp.additionals.length, 40);
  });
});
