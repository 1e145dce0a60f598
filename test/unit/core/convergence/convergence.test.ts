/**
 * Convergence receipts, pure core: record versions, the v2 snapshot and v1 ack codecs, the acker
 * state machine in simulated time (one entry per service replaced by each write, coalescing,
 * buckets, no per-task deletes), the collector (per-change times, local expiry, v1 and v2 acks
 * together, once-only completion, bounded history), the CLI summary line, the LB predicate and the histogram.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACK_WRITE_MS_PER_MEMBER, BUCKET_TASKS, ConvergenceAcks, ackWriteIntervalMs, ConvergenceBook, ConvergenceHistogram, bucketCount, bucketOf, changeOf, decodeConvergenceAck, decodeSnapshot, encodeConvergenceAck,
  encodeSnapshot, formatServiceConvergence, holdsBackend, lbProgrammed, parseConvergenceKey, parseSnapshotKey, recordRev, serviceConvergence, snapshotKey, taskHash,
  type ChangeView, type ConvergenceAck, type ConvergenceAction, type ProgrammedSnapshot, type RevFields,
} from '../../../../src/core/convergence/index.js';
import type { LbDesired } from '../../../../src/core/lb/model.js';
import { ReferenceAcks } from './acks-reference.js';

const base: RevFields = { taskName: 'web.1', serviceName: 'web', networkName: 'app', ip: '10.0.0.5', vip: '10.0.0.2', endpointMode: 'vip', aliases: [], ports: [{ proto: 'tcp', target: 80 }] };

describe('recordRev', () => {
  test('same fields → same rev; any programmed field changes it', () => {
    assert.equal(recordRev(base), recordRev({ ...base, aliases: [] }));
    assert.match(recordRev(base), /^[0-9a-f]{8}$/);
    const variants: RevFields[] = [
      { ...base, vip: '10.0.0.3' }, { ...base, ip: '10.0.0.6' }, { ...base, aliases: ['w'] }, { ...base, endpointMode: 'dnsrr' },
      { ...base, ports: [{ proto: 'tcp', target: 80, published: 8080 }] }, { ...base, taskName: 'web.2' }, { ...base, vip: null },
    ];
    const revs = new Set([recordRev(base), ...variants.map(recordRev)]);
    assert.equal(revs.size, variants.length + 1);
  });
});

describe('wire: v2 snapshots, v1 acks, keys', () => {
  test('snapshot round trip; garbage → null; v1 still decodes', () => {
    const snap: ProgrammedSnapshot = { v: 2, node: 'n2', service: 'web', at: 1_700_000_000_123, items: [{ task: taskHash('T1'), rev: 'abcd0123', tookMs: 45, agoMs: 0 }, { task: taskHash('T2'), rev: '0000ffff', tookMs: 123456, agoMs: 70000 }] };
    assert.deepEqual(decodeSnapshot(encodeSnapshot(snap)), snap);
    assert.deepEqual(decodeSnapshot(encodeSnapshot({ ...snap, items: [] })), { ...snap, items: [] });
    assert.ok(encodeSnapshot(snap).length < 110, 'an item costs ~26 bytes');
    const enc = new TextEncoder();
    for (const bad of ['', 'x', '{}', '{"v":2,"node":"n","service":"s","at":1,"s":"zz"}', '{"v":2,"node":"n","service":"s","at":"1","s":""}',
      '{"v":1,"node":"n","service":"s","rev":"r","seenAt":1,"ms":1}', '{"v":2,"node":"n","service":"s","at":1,"s":"0123456789abcdef1.1,"}']) {
      assert.equal(decodeSnapshot(enc.encode(bad)), null, bad);
    }
    const a: ConvergenceAck = { v: 1, node: 'n2', service: 'web', rev: 'abcd0123', seenAt: 1000, ms: 12 };
    assert.deepEqual(decodeConvergenceAck(encodeConvergenceAck(a)), a);
    assert.equal(decodeConvergenceAck(encodeSnapshot(snap)), null, 'an old node sees a v2 value as a bad ack');
    assert.deepEqual(parseConvergenceKey('T/n1'), { taskId: 'T', node: 'n1' });
    for (const bad of ['', 'T', '/n', 'T/', 'T/n/x']) assert.equal(parseConvergenceKey(bad), null, bad);
    assert.deepEqual(parseSnapshotKey(snapshotKey('svc1', 3, 'n1')), { serviceId: 'svc1', bucket: 3, node: 'n1' });
    assert.equal(parseSnapshotKey('T/n1'), null);
  });

  test('buckets keep a snapshot ≤ BUCKET_TASKS items', () => {
    assert.deepEqual([1, 40, 41, 80, 81, 10_000].map(bucketCount), [1, 1, 2, 2, 4, 256]);
    const per = new Map<number, number>();
    for (let i = 0; i < 1000; i++) { const b = bucketOf(taskHash(`task-${i}`), bucketCount(1000)); per.set(b, (per.get(b) ?? 0) + 1); }
    assert.equal(per.size, 32);
    assert.ok(Math.max(...per.values()) < 2 * BUCKET_TASKS);
  });
});

describe('ConvergenceAcks (simulated time)', () => {
  const yes = () => true;
  const items = (x: ConvergenceAction) => (x.type === 'write' ? x.snapshot.items.map((i) => `${i.task}:${i.rev}`).sort() : []);
  const it = (t: string, r: string) => `${taskHash(t)}:${r}`;

  test('one entry per service, written once programmed, with when it was seen and programmed', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 100 });
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 100, 5100);
    assert.deepEqual(a.evaluate(120, 5120, () => false), []);
    assert.deepEqual(a.outstanding(150), [{ network: 'app', task: 'T', forMs: 50 }]);
    const w = a.evaluate(160, 5160, yes);
    assert.deepEqual(w, [{ type: 'write', network: 'app', key: 'svc:S:0/n1', snapshot: { v: 2, node: 'n1', service: 'web', at: 5160, items: [{ task: taskHash('T'), rev: 'r1', tookMs: 60, agoMs: 0 }] } }]);
    assert.deepEqual(a.evaluate(170, 5170, yes), [], 'nothing new: no write');
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 180, 5180); // same version again (e.g. a push-pull): not a change
    assert.deepEqual(a.evaluate(400, 5400, yes), []);
    assert.equal(a.liveAcks(), 1);
  });

  test('REPLACEMENT: many changes in one write window are one entry listing them all (a watermark of what is programmed)', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 100 });
    a.record('app', 'T0', 'S', 'web', 'running', 'r', 0, 0);
    assert.equal(a.evaluate(0, 0, yes).length, 1);
    for (let i = 1; i <= 30; i++) {
      a.record('app', `T${i}`, 'S', 'web', 'running', 'r', i, i);
      assert.deepEqual(a.evaluate(i, i, yes), [], 'held back by minWriteMs');
    }
    assert.equal(a.nextDeadline(), 100);
    const w = a.evaluate(100, 100, yes);
    assert.equal(w.length, 1);
    assert.equal(items(w[0]!).length, 31, 'one write carries all 31 programmed tasks');
    assert.equal(a.counters.writes, 2);
    assert.ok(a.counters.held >= 30);
  });

  test('ackWriteIntervalMs: the write interval grows with the network, so snapshot writes per service stay ≤ 20/s at any size', () => {
    const rows: Array<[number, number, number]> = [[100, 0, 100], [100, 1, 100], [100, 2, 100], [100, 4, 200], [100, 10, 500], [100, 64, 3200], [0, 3, 150], [1000, 10, 1000]];
    for (const [min, n, want] of rows) assert.equal(ackWriteIntervalMs(min, n), want, `min ${min}, ${n} members`);
    for (const n of [2, 10, 64, 500]) assert.ok((n * 1000) / ackWriteIntervalMs(100, n) <= 1000 / ACK_WRITE_MS_PER_MEMBER + 1e-9);
  });

  test('on a 10-node network a busy snapshot is rewritten every 500 ms; the first write after a quiet spell goes out at once', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 100 });
    const ten = () => 10;
    a.record('app', 'T0', 'S', 'web', 'running', 'r', 0, 0);
    assert.equal(a.evaluate(0, 0, yes, ten).length, 1, 'at once');
    a.record('app', 'T1', 'S', 'web', 'running', 'r', 10, 10);
    assert.deepEqual(a.evaluate(100, 100, yes, ten), [], 'held (100 ms would be due without the network size)');
    assert.equal(a.nextDeadline(), 500);
    assert.equal(a.evaluate(500, 500, yes, ten).length, 1);
    a.record('app', 'T2', 'S', 'web', 'running', 'r', 2000, 2000);
    assert.equal(a.evaluate(2000, 2000, yes, ten).length, 1, 'quiet for longer than the interval: at once');
  });

  test('a new version (VIP change) replaces the old one in the next snapshot, timed from when it was seen', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 0, 0);
    a.evaluate(10, 10, yes);
    a.record('app', 'T', 'S', 'web', 'running', 'r2', 1000, 9000);
    assert.deepEqual(a.evaluate(1001, 9001, () => false).map(items), [[]], 'r1 is no longer what the record says: it leaves the snapshot until r2 is programmed');
    const w = a.evaluate(1050, 9050, yes);
    assert.deepEqual(items(w[0]!), [it('T', 'r2')]);
    const w0 = w[0]!;
    assert.equal(w0.type === 'write' && w0.snapshot.items[0]!.tookMs, 50);
  });

  test('EXPIRY instead of deletes: removals send nothing per task; an emptied service bucket is deleted once', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 0, 0);
    a.record('app', 'U', 'S', 'web', 'running', 'r1', 0, 0);
    a.evaluate(1, 1, yes);
    a.gone('app', 'T');
    assert.deepEqual(a.evaluate(2, 2, yes).map(items), [[it('U', 'r1')]], 'the next snapshot no longer lists T');
    a.record('app', 'U', 'S', 'web', 'draining', 'r1', 3, 3);
    assert.deepEqual(a.evaluate(4, 4, yes), [{ type: 'delete', network: 'app', key: 'svc:S:0/n1', why: 'empty' }]);
    a.record('app', 'V', 'S', 'web', 'starting', 'r1', 5, 5);
    assert.deepEqual(a.evaluate(6, 6, yes), [], 'starting records are not acked');
    assert.equal(a.counters.deletes, 1);
  });

  test('a service grown past BUCKET_TASKS is split into buckets; the old bucket key is rewritten, none lost', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    for (let i = 0; i < 100; i++) a.record('app', `T${i}`, 'S', 'web', 'running', 'r', 0, 0);
    const w = a.evaluate(1, 1, yes);
    assert.equal(w.length, 4);
    assert.equal(w.flatMap(items).length, 100);
    assert.ok(w.every((x) => x.type === 'write' && encodeSnapshot(x.snapshot).length < 1400), 'each entry fits one packet');
    for (let i = 40; i < 100; i++) a.gone('app', `T${i}`);
    const back = a.evaluate(2, 2, yes);
    assert.deepEqual(back.filter((x) => x.type === 'delete').length, 3, 'buckets 1..3 deleted once');
    assert.equal(back.filter((x) => x.type === 'write').flatMap(items).length, 40);
  });

  test('a service on two networks (app + ingress) has one entry on each', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 0, 0);
    a.record('ingress', 'T', 'S', 'web', 'running', 'r2', 0, 0);
    const w = a.evaluate(1, 1, yes);
    assert.deepEqual(w.map((x) => [x.network, x.key, items(x)]), [['app', 'svc:S:0/n1', [it('T', 'r1')]], ['ingress', 'svc:S:0/n1', [it('T', 'r2')]]]);
    a.gone('ingress', 'T');
    assert.deepEqual(a.evaluate(2, 2, yes), [{ type: 'delete', network: 'ingress', key: 'svc:S:0/n1', why: 'empty' }]);
  });

  test('leaving a network forgets its candidates and entries without writing', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    a.record('app', 'T', 'S', 'web', 'running', 'r1', 0, 0);
    a.evaluate(1, 1, yes);
    a.leftNetwork('app');
    assert.deepEqual(a.evaluate(2, 2, yes), []);
    assert.equal(a.liveAcks(), 0);
  });
});

const ack = (node: string, seenAt: number, ms: number, rev = 'r1'): ConvergenceAck => ({ v: 1, node, service: 'web', rev, seenAt, ms });

describe('collector', () => {
  test('changeOf: start = earliest seenAt, per-node times, pending live members, slowest', () => {
    const m = new Map([['n1', ack('n1', 1000, 20)], ['n2', ack('n2', 1030, 100)], ['n3', ack('n3', 1010, 40)]]);
    const v = changeOf('app', 'T', m, ['n1', 'n2', 'n3'])!;
    assert.deepEqual(v.acks, [{ node: 'n1', ms: 20 }, { node: 'n2', ms: 130 }, { node: 'n3', ms: 50 }]);
    assert.equal(v.complete, true);
    assert.equal(v.totalMs, 130);
    assert.equal(v.slowest, 'n2');
    const p = changeOf('app', 'T', m, ['n1', 'n2', 'n3', 'n4'])!;
    assert.deepEqual([p.complete, p.pending, p.totalMs, p.slowest], [false, ['n4'], null, null]);
    // A node still on the older rev is pending for the newer one.
    const mixed = new Map([['n1', ack('n1', 5000, 10, 'r2')], ['n2', ack('n2', 1000, 10, 'r1')]]);
    const x = changeOf('app', 'T', mixed, ['n1', 'n2'])!;
    assert.deepEqual([x.rev, x.pending], ['r2', ['n2']]);
    assert.equal(changeOf('app', 'T', new Map(), ['n1']), null);
  });

  test('book (v1 acks of old nodes): bad or foreign acks counted; completion reported once; history bounded', () => {
    const b = new ConvergenceBook(3);
    const enc = encodeConvergenceAck;
    const h = taskHash;
    const name = (_n: string, x: string) => ({ [h('T')]: 'T', ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [h(`U${i}`), `U${i}`])) }[x] ?? x);
    assert.equal(b.set('app', 'T/n2', 'n1', enc(ack('n2', 0, 1)), 0), null, 'n1 cannot ack for n2');
    assert.equal(b.set('app', 'T/n1', 'n1', new TextEncoder().encode('x'), 0), null);
    assert.equal(b.badAcks, 2);
    assert.deepEqual(b.set('app', 'T/n1', 'n1', enc(ack('n1', 0, 5)), 0), { tasks: [h('T')] });
    assert.equal(b.legacyAcks, 1);
    assert.equal(b.check('app', h('T'), ['n1', 'n2']).completed, false);
    b.set('app', 'T/n2', 'n2', enc(ack('n2', 0, 9)), 0);
    const c = b.check('app', h('T'), ['n1', 'n2'], name);
    assert.equal(c.completed, true);
    assert.equal(c.view!.totalMs, 9);
    assert.equal(c.view!.task, 'T');
    assert.equal(b.check('app', h('T'), ['n1', 'n2']).completed, false, 'once');
    for (let i = 0; i < 10; i++) {
      b.set('app', `U${i}/n1`, 'n1', enc(ack('n1', 100 + i, 1)), 0);
      b.check('app', h(`U${i}`), ['n1'], name);
    }
    assert.deepEqual(b.list(() => ['n1'], 3, name).map((x) => x.task), ['U9', 'U8', 'U7'], 'newest first, limited');
    assert.equal(b.list(() => ['n1']).length, 11, 'every change with live acks');
    assert.deepEqual(b.list(() => ['n1', 'n3'], 50, name).find((x) => x.task === 'U9')!.pending, ['n3']);
    b.set('app', 'U9/n3', 'n3', enc(ack('n3', 5000, 10)), 0);
    const u9 = b.list(() => ['n1', 'n3'], 50, name).find((x) => x.task === 'U9')!;
    assert.deepEqual([u9.acks.map((a) => a.node), u9.complete, u9.slowest], [['n1', 'n3'], true, 'n3']);
    for (let i = 0; i < 10; i++) b.delete('app', `U${i}/n1`);
    b.delete('app', 'U9/n3');
    assert.deepEqual(b.list(() => ['n1'], 50, name).map((x) => x.task), ['U9', 'U8', 'U7', 'T'], 'U acks gone: the history (3) remains; T still has live acks');
    b.dropNetwork('app');
    assert.equal(b.size(), 0);
  });

  test('book: the index is bounded; past maxAcks the tasks indexed longest ago go first, counted', () => {
    const b = new ConvergenceBook(10, 60_000, 5);
    const snap = (node: string, tasks: string[]) =>
      encodeSnapshot({ v: 2, node, service: 'web', at: 0, items: tasks.map((t) => ({ task: taskHash(t), rev: 'aaaa0001', tookMs: 1, agoMs: 0 })) });
    b.set('app', 'svc:S:0/n1', 'n1', snap('n1', ['A', 'B', 'C']), 0);
    b.set('app', 'svc:S:0/n2', 'n2', snap('n2', ['A', 'B']), 1);
    assert.equal(b.size(), 5);
    assert.equal(b.capped, 0);
    b.set('app', 'svc:S:0/n2', 'n2', snap('n2', ['A', 'B', 'D']), 2);
    assert.equal(b.size(), 4, 'A (2 node acks, indexed first) shed to make room for D');
    assert.equal(b.capped, 2);
    assert.deepEqual(b.openTasksOn('app').sort(), [taskHash('B'), taskHash('C'), taskHash('D')].sort());
    b.expire(60_000);
    assert.equal(b.size(), 2, "n1's B and C expired (last mentioned at 0); n2's B and D, mentioned at 2, live until 60,002");
    assert.deepEqual(b.openTasksOn('app').sort(), [taskHash('B'), taskHash('D')].sort());
    b.dropNetwork('app');
    assert.equal(b.size(), 0);
  });

  test('book: list(service) gives exactly that service\'s views, live and completed, as filtering the whole list would', () => {
    const b = new ConvergenceBook(100, 60_000);
    const snap = (node: string, service: string, tasks: string[]) =>
      encodeSnapshot({ v: 2, node, service, at: 0, items: tasks.map((t) => ({ task: taskHash(t), rev: 'aaaa0001', tookMs: 1, agoMs: 0 })) });
    b.set('app', 'svc:W:0/n1', 'n1', snap('n1', 'web', ['A', 'B']), 0);
    b.set('app', 'svc:D:0/n1', 'n1', snap('n1', 'db', ['C']), 0);
    b.set('app', 'svc:W:0/n2', 'n2', snap('n2', 'web', ['A']), 1);
    b.check('app', taskHash('A'), ['n1', 'n2']); // completed: in the history too
    const all = b.list(() => ['n1', 'n2'], 50);
    for (const svc of ['web', 'db', 'none']) {
      assert.deepEqual(b.list(() => ['n1', 'n2'], 50, undefined, svc), all.filter((c) => c.service === svc), svc);
    }
    assert.equal(b.list(() => ['n1', 'n2'], 50, undefined, 'web').length, 2);
  });

  test('book: only changes still open are rechecked — a completed one leaves the open set until a new version arrives', () => {
    const b = new ConvergenceBook(10, 60_000);
    const snap = (node: string, rev: string, tasks: string[]) =>
      encodeSnapshot({ v: 2, node, service: 'web', at: 0, items: tasks.map((t) => ({ task: taskHash(t), rev, tookMs: 1, agoMs: 0 })) });
    const [A, B] = [taskHash('A'), taskHash('B')];
    b.set('app', 'svc:S:0/n1', 'n1', snap('n1', 'aaaa0001', ['A', 'B']), 0);
    assert.deepEqual(b.openTasksOn('app').sort(), [A, B].sort(), 'not checked yet: open');
    b.set('app', 'svc:S:0/n2', 'n2', snap('n2', 'aaaa0001', ['A']), 1);
    assert.equal(b.check('app', A, ['n1', 'n2']).completed, true);
    assert.equal(b.check('app', B, ['n1', 'n2']).completed, false, 'B waits for n2');
    assert.deepEqual(b.openTasksOn('app'), [B], 'A is complete: a member event need not look at it again');
    assert.deepEqual(b.openTasksOn('other'), []);
    // n2 dies: the recheck of the open ones completes B.
    assert.equal(b.check('app', B, ['n1']).completed, true);
    assert.deepEqual(b.openTasksOn('app'), []);
    // A new version of A re-opens it until every node acks it.
    b.set('app', 'svc:S:0/n1', 'n1', snap('n1', 'aaaa0002', ['A']), 5);
    assert.deepEqual(b.openTasksOn('app'), [A]);
    assert.equal(b.check('app', A, ['n1', 'n2']).completed, false);
    assert.deepEqual(b.openTasksOn('app'), [A]);
    // A deleted task's change is closed: no recheck waits for it; a later ack of it reopens it.
    b.close('app', A);
    assert.deepEqual(b.openTasksOn('app'), []);
    b.set('app', 'svc:S:0/n2', 'n2', snap('n2', 'aaaa0002', ['A']), 6);
    assert.deepEqual(b.openTasksOn('app'), [A]);
    b.dropNetwork('app');
    assert.deepEqual(b.openTasksOn('app'), []);
  });

  test('book (v2 snapshots): node times from the snapshot, a replaced snapshot loses nothing, expiry is local, mixed v1/v2 completes', () => {
    const b = new ConvergenceBook(10, 1000);
    const snap = (node: string, at: number, its: Array<[string, string, number, number]>) =>
      encodeSnapshot({ v: 2, node, service: 'web', at, items: its.map(([t, rev, tookMs, agoMs]) => ({ task: taskHash(t), rev, tookMs, agoMs })) });
    const T = taskHash('T');
    const R1 = 'aaaa0001';
    // n1 (the owner) saw T at 10,000 and programmed it 20 ms later.
    assert.deepEqual(b.set('app', 'svc:S:0/n1', 'n1', snap('n1', 10_020, [['T', R1, 20, 0]]), 0), { tasks: [T] });
    assert.equal(b.set('app', 'svc:S:0/n2', 'n1', snap('n2', 1, []), 0), null, 'n1 cannot speak for n2');
    assert.equal(b.set('app', 'svc:S:0/n2', 'n2', encodeConvergenceAck(ack('n2', 0, 1)), 0), null, 'a v1 value under a v2 key is bad');
    // n2's first snapshot listing T was replaced in flight: its later one (also listing U) still says when T was programmed.
    b.set('app', 'svc:S:0/n2', 'n2', snap('n2', 10_500, [['T', R1, 30, 400], ['U', R1, 5, 0]]), 10);
    // n3 runs the old format: one v1 ack.
    b.set('app', 'T/n3', 'n3', encodeConvergenceAck(ack('n3', 10_010, 90, R1)), 20);
    const c = b.check('app', T, ['n1', 'n2', 'n3'], () => 'T');
    assert.equal(c.completed, true);
    assert.deepEqual(c.view!.acks, [{ node: 'n1', ms: 20 }, { node: 'n2', ms: 100 }, { node: 'n3', ms: 100 }]);
    assert.equal(c.view!.slowest, 'n2');
    // Re-listing an acked (task, rev) is no news: no check needed, nothing observed twice.
    assert.deepEqual(b.set('app', 'svc:S:0/n2', 'n2', snap('n2', 11_000, [['T', R1, 30, 900]]), 500), { tasks: [] });
    // Expiry: n1's ack was last mentioned at 0, n2's at 500, n3's (v1) at 20: all gone ttl after.
    assert.equal(b.nextExpiry(), 1000);
    b.expire(999);
    assert.equal(b.size(), 4);
    b.expire(1000);
    assert.equal(b.size(), 3, 'n1 expired');
    b.expire(1600);
    assert.equal(b.size(), 0);
    assert.equal(b.expired, 4);
    assert.equal(b.list(() => ['n1', 'n2', 'n3'], 50, () => 'T')[0]!.totalMs, 100, 'the history remains');
    // A v2 key's delete (an emptied bucket) does not drop acks: they expire.
    b.set('app', 'svc:S:0/n1', 'n1', snap('n1', 20_000, [['V', R1, 1, 0]]), 2000);
    b.delete('app', 'svc:S:0/n1');
    assert.equal(b.size(), 1);
  });

  test('service summary and its line', () => {
    const mk = (task: string, acks: Array<[string, number]>, pending: string[] = []): ChangeView => ({
      network: 'app', service: 'web', task, rev: 'r', startedAt: 0, acks: acks.map(([node, ms]) => ({ node, ms })), pending,
      complete: pending.length === 0, totalMs: null, slowest: null,
    });
    const done = serviceConvergence([mk('A', [['n1', 10], ['n2', 640]]), mk('B', [['n1', 30], ['n2', 50], ['n3', 200]])]);
    assert.equal(formatServiceConvergence(done), 'programmed on 3/3 nodes in 640 ms (slowest n2)');
    const pend = serviceConvergence([mk('A', [['n1', 10]], ['n2'])]);
    assert.equal(formatServiceConvergence(pend), 'programmed on 1/2 nodes (pending n2)');
    assert.equal(formatServiceConvergence(serviceConvergence([])), 'programmed: no endpoint changes seen');
  });
});

describe('LB predicate', () => {
  const d = (vip: string, id: string, ip: string, state: 'active' | 'draining' = 'active'): LbDesired => ({
    services: [{ id: 's', name: 'web', vip, ports: [], backends: [{ id, ip, state }] }], ingress: [],
  });
  test('holdsBackend / lbProgrammed table', () => {
    assert.equal(holdsBackend(d('10.0.0.2', 'T', '10.0.0.5'), 'T', '10.0.0.5', '10.0.0.2'), true);
    assert.equal(holdsBackend(d('10.0.0.9', 'T', '10.0.0.5'), 'T', '10.0.0.5', '10.0.0.2'), false, 'old VIP');
    assert.equal(holdsBackend(d('10.0.0.2', 'T', '10.0.0.5', 'draining'), 'T', '10.0.0.5', '10.0.0.2'), false);
    assert.equal(holdsBackend(undefined, 'T', '10.0.0.5', '10.0.0.2'), false, 'never applied');
    const ing: LbDesired = { services: [], ingress: [{ service: 's', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [{ id: 'T', ip: '10.255.0.5', state: 'active' }] }] };
    assert.equal(holdsBackend(ing, 'T', '10.255.0.5', null), true);
    assert.equal(lbProgrammed([], 'T', 'x', null), true, 'no namespace wants it');
    assert.equal(lbProgrammed([{ wants: false, applied: undefined }], 'T', '10.0.0.5', '10.0.0.2'), true);
    assert.equal(lbProgrammed([{ wants: true, applied: d('10.0.0.2', 'T', '10.0.0.5') }, { wants: true, applied: undefined }], 'T', '10.0.0.5', '10.0.0.2'), false);
  });
});

describe('histogram', () => {
  test('buckets are cumulative in the text; bad values ignored', () => {
    const h = new ConvergenceHistogram();
    for (const s of [0.005, 0.3, 0.3, 1.5, 30, -1, Number.NaN]) h.observe(s);
    assert.equal(h.count, 5);
    const t = h.render('meshd_convergence_seconds', 'node="n1"');
    assert.match(t, /# TYPE meshd_convergence_seconds histogram/);
    assert.match(t, /meshd_convergence_seconds_bucket\{le="0.01",node="n1"\} 1/);
    assert.match(t, /meshd_convergence_seconds_bucket\{le="0.5",node="n1"\} 3/);
    assert.match(t, /meshd_convergence_seconds_bucket\{le="2",node="n1"\} 4/);
    assert.match(t, /meshd_convergence_seconds_bucket\{le="\+Inf",node="n1"\} 5/);
    assert.match(t, /meshd_convergence_seconds_count\{node="n1"\} 5/);
  });
});

describe('ConvergenceAcks: one change costs O(its service) (issue 18), same actions as before', () => {
  const yes = () => true;

  test('1,000 services × 10 programmed records: one change asks about one version and rebuilds one service', () => {
    const a = new ConvergenceAcks('n1', { minWriteMs: 0 });
    for (let s = 0; s < 1000; s++) for (let e = 0; e < 10; e++) a.record('app', `t${s}x${e}`, `s${s}`, `svc${s}`, 'running', 'r1', 0, 0);
    assert.equal(a.evaluate(1, 1, yes).length, 1000, 'first evaluation: one entry per service');
    let asked = 0;
    a.record('app', 't7x3', 's7', 'svc7', 'running', 'r2', 2, 2);
    const w = a.evaluate(3, 3, () => (asked++, true));
    assert.equal(asked, 1, 'only the pending version is asked about');
    assert.deepEqual(w.map((x) => [x.type, x.key]), [['write', 'svc:s7:0/n1']]);
    assert.equal(a.outstandingCount(), 0);
    assert.equal(a.liveAcks(), 10_000);
    assert.deepEqual(a.evaluate(4, 4, () => (asked++, true)), [], 'nothing changed: nothing asked, nothing written');
    assert.equal(asked, 1);
  });

  test('differential: 3,000 random steps give the same writes, deletes, counters and deadlines as the acker before the indexes', () => {
    let seed = 18;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const a = new ConvergenceAcks('n1', { minWriteMs: 50 });
    const ref = new ReferenceAcks('n1', { minWriteMs: 50 });
    const both = [a, ref] as const;
    const norm = (xs: ConvergenceAction[]) => xs.map((x) => JSON.stringify(x)).sort();
    let now = 0;
    let writes = 0;
    for (let step = 0; step < 3000; step++) {
      now += rnd(30);
      const net = ['app', 'ingress', 'db'][rnd(3)]!;
      const task = `T${rnd(60)}`;
      const svc = `S${rnd(6)}`;
      switch (rnd(7)) {
        case 0: case 1: case 2: {
          const state = ['running', 'running', 'running', 'draining', 'starting'][rnd(5)]!;
          const rev = `r${rnd(3)}`;
          for (const x of both) x.record(net, task, svc, `name-${svc}`, state, rev, now, now + 5000);
          break;
        }
        case 3: for (const x of both) x.gone(net, task); break;
        case 4: if (rnd(20) === 0) for (const x of both) x.leftNetwork(net); break;
        default: {
          // the LB/DNS answer: a deterministic function of the version and time, the same for both
          const programmed = (n: string, t: string, r: string) => (n.length + t.length * 7 + r.charCodeAt(1) + Math.floor(now / 40)) % 3 !== 0;
          const got = a.evaluate(now, now + 5000, programmed);
          const want = ref.evaluate(now, now + 5000, programmed);
          assert.deepEqual(norm(got), norm(want), `step ${step}`);
          writes += got.length;
          const fail = got.find((x) => x.type === 'write' && rnd(10) === 0);
          if (fail) for (const x of both) x.failed(fail.network, fail.key);
          assert.equal(a.nextDeadline(), ref.nextDeadline(), `deadline, step ${step}`);
        }
      }
      assert.deepEqual(a.counters, ref.counters, `counters, step ${step}`);
      assert.deepEqual(a.outstanding(now), ref.outstanding(now), `outstanding, step ${step}`);
      assert.equal(a.liveAcks(), ref.liveAcks());
      assert.equal(a.outstandingCount(), ref.outstanding(now).length);
    }
    assert.ok(writes > 100, `the walk wrote (${writes})`);
  });
});

test('ConvergenceBook.check: a change some expected node has not acked yet gets no view built, stays open and completes later', () => {
  const b = new ConvergenceBook(10, 1000);
  const T = taskHash('T');
  b.set('app', 'T/n1', 'n1', encodeConvergenceAck({ v: 1, node: 'n1', service: 'S', rev: 'r1', seenAt: 0, ms: 5 }), 0);
  const early = b.check('app', T, ['n1', 'n2']);
  assert.deepEqual(early, { view: null, completed: false });
  assert.deepEqual(b.openTasksOn('app'), [T], 'still open: a death of n2 must recheck it');
  b.set('app', 'T/n2', 'n2', encodeConvergenceAck({ v: 1, node: 'n2', service: 'S', rev: 'r1', seenAt: 1, ms: 7 }), 0);
  const c = b.check('app', T, ['n1', 'n2']);
  assert.equal(c.completed, true);
  assert.equal(c.view!.totalMs, 8);
  assert.deepEqual(b.openTasksOn('app'), []);
  // Once n2 is no longer expected (dead), n1's ack alone completes a task only n1 acked.
  const U = taskHash('U');
  b.set('app', 'U/n1', 'n1', encodeConvergenceAck({ v: 1, node: 'n1', service: 'S', rev: 'r2', seenAt: 10, ms: 3 }), 0);
  assert.equal(b.check('app', U, ['n1', 'n2']).completed, false);
  assert.equal(b.check('app', U, ['n1']).completed, true);
});
