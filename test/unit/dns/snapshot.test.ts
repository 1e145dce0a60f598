/** Registry replication for DNS workers, the worker-layout formulas, and the counter sum. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { applySnapshot, defaultDnsWorkers, perWorkerPendingBound, snapshotRegistry } from '../../../src/core/dns/snapshot.js';
import { emptyStats, observeLatency, sumStats } from '../../../src/adapters/dns-server/stats.js';
import { respawnDelayMs } from '../../../src/adapters/dns-server/workers.js';

function source(): DnsRegistry {
  const r = new DnsRegistry();
  r.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2', aliases: ['www'], owner: 'n1' }, 0);
  r.upsertService({ name: 'rr', network: 'app', mode: 'dnsrr' }, 0);
  r.upsertService({ name: 'db', network: 'back', mode: 'vip', vip: '10.1.0.2' }, 0);
  r.upsertTask({ name: 'rr.1.a', network: 'app', service: 'rr', ip: '10.0.1.1', healthy: true, owner: 'n1' }, 0);
  r.upsertTask({ name: 'rr.2.b', network: 'app', service: 'rr', ip: '10.0.1.2', healthy: false, owner: 'n2' }, 0);
  return r;
}

describe('dns registry snapshots', () => {
  test('a replica built from a snapshot holds the same entries (JSON round trip)', () => {
    const src = source();
    const replica = new DnsRegistry();
    assert.equal(applySnapshot(replica, JSON.parse(JSON.stringify(snapshotRegistry(src))), 5), true);
    assert.deepEqual(replica.networks(), src.networks());
    for (const n of src.networks()) {
      assert.deepEqual(replica.services(n).map((s) => ({ ...s, updatedAt: 0 })), src.services(n));
      assert.deepEqual(replica.tasks(n).map((t) => ({ ...t, updatedAt: 0 })), src.tasks(n));
    }
  });

  test('an unchanged snapshot does not move the generation (the worker cache survives)', () => {
    const src = source();
    const replica = new DnsRegistry();
    applySnapshot(replica, snapshotRegistry(src), 0);
    const g = replica.generation;
    assert.equal(applySnapshot(replica, snapshotRegistry(src), 1), false);
    assert.equal(replica.generation, g);
  });

  test('removals and changes reach the replica (scale 2 → 1, VIP change, network gone)', () => {
    const src = source();
    const replica = new DnsRegistry();
    applySnapshot(replica, snapshotRegistry(src), 0);
    src.removeTask('app', 'rr.2.b');
    src.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.3', aliases: ['www'], owner: 'n1' }, 1);
    src.removeService('back', 'db');
    assert.equal(applySnapshot(replica, snapshotRegistry(src), 1), true);
    assert.deepEqual(replica.tasks('app').map((t) => t.name), ['rr.1.a']);
    assert.equal(replica.services('app').find((s) => s.name === 'web')!.vip, '10.0.0.3');
    assert.deepEqual(replica.networks(), ['app']);
  });
});

describe('dns worker formulas', () => {
  const workers: Array<[number, number]> = [[0, 1], [1, 1], [2, 1], [3, 3], [4, 4], [8, 4], [64, 4], [NaN, 1]];
  for (const [cpus, want] of workers) test(`defaultDnsWorkers(${cpus}) = ${want}`, () => assert.equal(defaultDnsWorkers(cpus), want));

  const bounds: Array<[number, number, number]> = [[256, 1, 256], [256, 2, 128], [256, 3, 86], [1, 4, 1], [10, 4, 3]];
  for (const [total, w, want] of bounds) test(`perWorkerPendingBound(${total}, ${w}) = ${want}`, () => assert.equal(perWorkerPendingBound(total, w), want));

  const delays: Array<[number, number]> = [[1, 500], [2, 1000], [3, 2000], [7, 30_000], [100, 30_000]];
  for (const [n, want] of delays) test(`respawnDelayMs(${n}) = ${want}`, () => assert.equal(respawnDelayMs(n), want));
});

describe('dns counters across processes', () => {
  test('sumStats adds counters, maps and histograms', () => {
    const a = emptyStats();
    const b = emptyStats();
    a.queries.udp = 3;
    b.queries.udp = 4;
    b.queries.tcp = 1;
    a.answers.NOERROR = 2;
    b.answers.NOERROR = 5;
    b.answers.SERVFAIL = 1;
    a.drops['qr-set'] = 1;
    a.pending = 2;
    b.pending = 3;
    a.cache.hits = 10;
    b.cache.size = 7;
    observeLatency(a, 40);
    observeLatency(b, 40);
    observeLatency(b, 2_000_000);
    const s = sumStats([a, b]);
    assert.deepEqual(s.queries, { udp: 7, tcp: 1 });
    assert.deepEqual(s.answers, { NOERROR: 7, SERVFAIL: 1 });
    assert.deepEqual(s.drops, { 'qr-set': 1 });
    assert.equal(s.pending, 5);
    assert.equal(s.cache.hits, 10);
    assert.equal(s.cache.size, 7);
    assert.equal(s.latency.count, 3);
    assert.equal(s.latency.sumUs, 2_000_080);
    assert.equal(s.latency.counts[0], 2);
    assert.equal(s.latency.counts.reduce((x, y) => x + y, 0), 3);
  });
});
