/**
 * Convergence receipts, pure core: record versions, ack codec, the acker state machine in
 * simulated time (ack when programmed, re-ack a new version, retract, expiry and the cap keep the
 * table bounded), the collector (per-change times, pending live members, once-only completion,
 * bounded history), the CLI summary line, the LB predicate and the histogram.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConvergenceAcks, ConvergenceBook, ConvergenceHistogram, changeOf, decodeConvergenceAck, encodeConvergenceAck, formatServiceConvergence,
  holdsBackend, lbProgrammed, parseConvergenceKey, recordRev, serviceConvergence, type ChangeView, type ConvergenceAck, type RevFields,
} from '../../../../src/core/convergence/index.js';
import type { LbDesired } from '../../../../src/core/lb/model.js';

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

describe('ack codec and keys', () => {
  test('round trip; garbage → null', () => {
    const a: ConvergenceAck = { v: 1, node: 'n2', service: 'web', rev: 'abcd0123', seenAt: 1000, ms: 12 };
    assert.deepEqual(decodeConvergenceAck(encodeConvergenceAck(a)), a);
    const enc = new TextEncoder();
    for (const bad of ['', 'x', 'null', '{}', '{"v":2,"node":"n","service":"s","rev":"r","seenAt":1,"ms":1}', '{"v":1,"node":"n","service":"s","rev":"r","seenAt":1,"ms":-1}',
      '{"v":1,"node":"n","service":"s","rev":"r","seenAt":"1","ms":1}', '{"v":1,"node":3,"service":"s","rev":"r","seenAt":1,"ms":1}']) {
      assert.equal(decodeConvergenceAck(enc.encode(bad)), null, bad);
    }
    assert.deepEqual(parseConvergenceKey('T/n1'), { taskId: 'T', node: 'n1' });
    for (const bad of ['', 'T', '/n', 'T/', 'T/n/x']) assert.equal(parseConvergenceKey(bad), null, bad);
  });
});

describe('ConvergenceAcks (simulated time)', () => {
  const yes = () => true;
  test('acks once programmed, with seenAt and ms; not again for the same version', () => {
    const a = new ConvergenceAcks('n1', { ttlMs: 1000 });
    a.record('app', 'T', 'web', 'running', 'r1', 100, 5100);
    assert.deepEqual(a.evaluate(120, 5120, () => false), []);
    assert.deepEqual(a.outstanding(150), [{ network: 'app', task: 'T', forMs: 50 }]);
    assert.deepEqual(a.evaluate(160, 5160, yes), [{ type: 'write', network: 'app', key: 'T/n1', ack: { v: 1, node: 'n1', service: 'web', rev: 'r1', seenAt: 5100, ms: 60 } }]);
    assert.deepEqual(a.evaluate(170, 5170, yes), []);
    a.record('app', 'T', 'web', 'running', 'r1', 180, 5180); // same version again (e.g. a push-pull): not a change
    assert.deepEqual(a.evaluate(190, 5190, yes), []);
    assert.equal(a.liveAcks(), 1);
  });

  test('a new version (VIP change) is acked again, timed from when it was seen', () => {
    const a = new ConvergenceAcks('n1');
    a.record('app', 'T', 'web', 'running', 'r1', 0, 0);
    a.evaluate(10, 10, yes);
    a.record('app', 'T', 'web', 'running', 'r2', 500, 500);
    const out = a.evaluate(540, 540, (_n, _t, rev) => rev === 'r2');
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], { type: 'write', network: 'app', key: 'T/n1', ack: { v: 1, node: 'n1', service: 'web', rev: 'r2', seenAt: 500, ms: 40 } });
  });

  test('starting records are not acked; leaving running or deletion retracts a live ack', () => {
    const a = new ConvergenceAcks('n1');
    a.record('app', 'S', 'web', 'starting', 'r1', 0, 0);
    assert.deepEqual(a.evaluate(1, 1, yes), []);
    a.record('app', 'T', 'web', 'running', 'r1', 0, 0);
    a.evaluate(1, 1, yes);
    a.record('app', 'T', 'web', 'draining', 'r1', 2, 2);
    assert.deepEqual(a.evaluate(3, 3, yes), [{ type: 'delete', network: 'app', key: 'T/n1', why: 'retracted' }]);
    a.gone('app', 'T'); // already gone: nothing more
    assert.deepEqual(a.evaluate(4, 4, yes), []);
    a.record('app', 'U', 'web', 'running', 'r1', 0, 0);
    a.gone('app', 'U'); // never acked: nothing to retract
    assert.deepEqual(a.evaluate(5, 5, yes), []);
  });

  test('acks expire after ttlMs and are not re-made for the same version; nextDeadline says when', () => {
    const a = new ConvergenceAcks('n1', { ttlMs: 1000 });
    a.record('app', 'T', 'web', 'running', 'r1', 0, 0);
    a.evaluate(10, 10, yes);
    assert.equal(a.nextDeadline(), 1010);
    assert.deepEqual(a.evaluate(1009, 1009, yes), []);
    assert.deepEqual(a.evaluate(1010, 1010, yes), [{ type: 'delete', network: 'app', key: 'T/n1', why: 'expired' }]);
    assert.equal(a.nextDeadline(), undefined);
    assert.deepEqual(a.evaluate(5000, 5000, yes), []);
    assert.deepEqual(a.outstanding(5000), []);
    a.record('app', 'T', 'web', 'running', 'r2', 6000, 6000); // a later change is acked again
    assert.equal(a.evaluate(6001, 6001, yes)[0]?.type, 'write');
  });

  test('bounded: 10,000 changes over simulated hours keep live acks ≤ the cap and expire the rest', () => {
    const a = new ConvergenceAcks('n1', { ttlMs: 60_000, maxAcks: 100 });
    let now = 0;
    let writes = 0;
    let deletes = 0;
    for (let i = 0; i < 10_000; i++) {
      now += 50; // 20 changes/s
      a.record('app', `T${i % 500}`, 'web', 'running', `r${i}`, now, now);
      for (const x of a.evaluate(now, now, yes)) x.type === 'write' ? writes++ : deletes++;
      assert.ok(a.liveAcks() <= 100, `live ${a.liveAcks()} at ${i}`);
    }
    assert.equal(writes, 10_000);
    assert.equal(a.counters.capped, 10_000 - 100);
    // Quiet afterwards: everything still live expires.
    for (const x of a.evaluate(now + 60_000, now + 60_000, yes)) if (x.type === 'delete') deletes++;
    assert.equal(a.liveAcks(), 0);
    assert.equal(deletes, 10_000, 'each ack left the table once: 9,900 capped, the last 100 expired');
  });

  test('ttl alone bounds the table at a steady rate below the cap', () => {
    const a = new ConvergenceAcks('n1', { ttlMs: 1000, maxAcks: 10_000 });
    let max = 0;
    for (let i = 0; i < 5000; i++) {
      const now = i * 10; // 100 changes/s, 1 s ttl → ~100 live
      a.record('app', `T${i}`, 'web', 'running', 'r', now, now);
      a.evaluate(now, now, yes);
      max = Math.max(max, a.liveAcks());
    }
    assert.ok(max <= 101, `max live ${max}`);
    assert.equal(a.counters.capped, 0);
  });

  test('leaving a network forgets its candidates without retracting', () => {
    const a = new ConvergenceAcks('n1');
    a.record('app', 'T', 'web', 'running', 'r1', 0, 0);
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

  test('book: bad or foreign acks counted; completion reported once; history bounded', () => {
    const b = new ConvergenceBook(3);
    const enc = encodeConvergenceAck;
    assert.equal(b.set('app', 'T/n2', 'n1', enc(ack('n2', 0, 1))), null, 'n1 cannot ack for n2');
    assert.equal(b.set('app', 'T/n1', 'n1', new TextEncoder().encode('x')), null);
    assert.equal(b.badAcks, 2);
    assert.deepEqual(b.set('app', 'T/n1', 'n1', enc(ack('n1', 0, 5))), { task: 'T' });
    assert.equal(b.check('app', 'T', ['n1', 'n2']).completed, false);
    b.set('app', 'T/n2', 'n2', enc(ack('n2', 0, 9)));
    const c = b.check('app', 'T', ['n1', 'n2']);
    assert.equal(c.completed, true);
    assert.equal(c.view!.totalMs, 9);
    assert.equal(b.check('app', 'T', ['n1', 'n2']).completed, false, 'once');
    for (let i = 0; i < 10; i++) {
      b.set('app', `U${i}/n1`, 'n1', enc(ack('n1', 100 + i, 1)));
      b.check('app', `U${i}`, ['n1']);
    }
    assert.deepEqual(b.list(() => ['n1'], 3).map((x) => x.task), ['U9', 'U8', 'U7'], 'newest first, limited');
    assert.equal(b.list(() => ['n1']).length, 11, 'every change with live acks');
    // A node that joined the network later: the current view lists it as pending, then acked.
    assert.deepEqual(b.list(() => ['n1', 'n3']).find((x) => x.task === 'U9')!.pending, ['n3']);
    b.set('app', 'U9/n3', 'n3', enc(ack('n3', 5000, 10)));
    const u9 = b.list(() => ['n1', 'n3']).find((x) => x.task === 'U9')!;
    assert.deepEqual([u9.acks.map((a) => a.node), u9.complete, u9.slowest], [['n1', 'n3'], true, 'n3']);
    for (let i = 0; i < 10; i++) b.delete('app', `U${i}/n1`);
    b.delete('app', 'U9/n3');
    assert.deepEqual(b.list(() => ['n1']).map((x) => x.task), ['U9', 'U8', 'U7', 'T'], 'U acks gone: the history (3) remains; T still has live acks');
    b.dropNetwork('app');
    assert.equal(b.size(), 0);
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
