import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GOSSIP_PRESETS } from '../../../src/core/gossip/config.js';
import { Tables, type NetworkEvent, type TableEvent } from '../../../src/core/gossip/tables.js';
import { BroadcastQueue, type BroadcastItem } from '../../../src/core/gossip/broadcast.js';
import { decodePacket, type Msg } from '../../../src/core/gossip/wire.js';
import type { MemberState } from '../../../src/core/gossip/wire.js';
import { MeshError } from '../../../src/core/errors.js';
import { cluster } from './helpers.js';
import type { Sim } from './sim.js';

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const s = (u: Uint8Array): string => new TextDecoder().decode(u);
const view = (sim: Sim, n: string, net: string): string[] =>
  sim.get(n).node.tableEntries(net).map((e) => `${e.table}/${e.key}=${s(e.value)}@${e.owner}`);

function fakeTables(self: string, states: Record<string, MemberState> = {}) {
  const events: (TableEvent | NetworkEvent)[] = [];
  const sent: BroadcastItem[] = [];
  const t = new Tables(GOSSIP_PRESETS.local, self, {
    broadcast: (b) => sent.push(b), emitTable: (e) => events.push(e), memberState: (n) => states[n] ?? 'alive', requestSync: () => undefined, sendDirect: () => true, syncWith: () => undefined, joinSpreadMs: () => 800, sendDirectAll: () => undefined,
  });
  return { t, events, sent };
}

describe('tables (unit)', () => {
  test('last writer wins by Lamport time; ties go to the greater owner name', () => {
    const { t, events } = fakeTables('me');
    t.joinNetwork('app', 0);
    const e = (owner: string, ltime: number, value: string) => ({ network: 'app', table: 't', key: 'k', value: v(value), ltime, owner, deleted: false });
    assert.ok(t.applyEntry(e('b', 10, 'b10'), 1, false));
    assert.ok(!t.applyEntry(e('a', 10, 'a10'), 1, false), 'same time, smaller owner loses');
    assert.ok(t.applyEntry(e('c', 10, 'c10'), 1, false), 'same time, greater owner wins');
    assert.ok(!t.applyEntry(e('z', 9, 'z9'), 1, false), 'older loses');
    assert.equal(s(t.tableGet('app', 't', 'k')!.value), 'c10');
    assert.deepEqual(events.filter((x) => 'key' in x).map((x) => x.type), ['create', 'update']);
    assert.ok(t.lamport >= 10, 'clock witnessed remote time');
    t.tableSet('app', 't', 'k', v('mine'), 2);
    assert.ok(t.tableGet('app', 't', 'k')!.ltime > 10, 'local write is newer than anything seen');
  });
  test('refuses writes to networks we are not on, and over-long fields', () => {
    const { t } = fakeTables('me');
    assert.throws(() => t.tableSet('nope', 't', 'k', v('x'), 0), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_NOT_FOUND');
    t.joinNetwork('app', 0);
    assert.throws(() => t.tableSet('app', 't', 'k'.repeat(257), v('x'), 0), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    assert.throws(() => t.tableSet('app', 't', 'k', new Uint8Array(4097), 0), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
  });
  test('entries of a dead owner, or of a network we did not join, are refused', () => {
    const { t } = fakeTables('me', { ghost: 'dead' });
    t.joinNetwork('app', 0);
    assert.ok(!t.applyEntry({ network: 'app', table: 't', key: 'k', value: v('x'), ltime: 5, owner: 'ghost', deleted: false }, 1, false));
    assert.ok(!t.applyEntry({ network: 'other', table: 't', key: 'k', value: v('x'), ltime: 5, owner: 'b', deleted: false }, 1, false));
    assert.deepEqual(t.tableEntries('other'), []);
  });
  test('tombstones are reaped after tombstoneReapMs', () => {
    const { t } = fakeTables('me');
    t.joinNetwork('app', 0);
    t.tableSet('app', 't', 'k', v('x'), 0);
    t.tableDelete('app', 't', 'k', 100);
    assert.equal(t.snapshot().entries.length, 1, 'tombstone kept');
    assert.equal(t.reap(100 + GOSSIP_PRESETS.local.tombstoneReapMs - 1), 0);
    assert.equal(t.reap(100 + GOSSIP_PRESETS.local.tombstoneReapMs), 1);
    assert.equal(t.snapshot().entries.length, 0);
  });
  test('reap follows each tombstone\'s own time: a re-deleted key waits again, a revived one is never reaped', () => {
    const { t } = fakeTables('me');
    const R = GOSSIP_PRESETS.local.tombstoneReapMs;
    t.joinNetwork('app', 0);
    for (const k of ['a', 'b', 'c']) t.tableSet('app', 't', k, v('x'), 0);
    t.tableDelete('app', 't', 'a', 100);
    t.tableDelete('app', 't', 'b', 200);
    t.tableSet('app', 't', 'a', v('again'), 300); // revived: no longer a tombstone
    t.tableDelete('app', 't', 'c', 400);
    t.tableDelete('app', 't', 'a', 500); // deleted anew: its clock restarts
    assert.equal(t.reap(200 + R), 1, 'only b');
    assert.deepEqual(t.snapshot().entries.map((e) => e.key).sort(), ['a', 'c']);
    assert.equal(t.reap(400 + R), 1, 'c');
    assert.equal(t.reap(500 + R - 1), 0);
    assert.equal(t.reap(500 + R), 1, 'a, at its second delete');
    assert.deepEqual(t.snapshot().entries, []);
  });
  test('network-leave records of others are reaped after tombstoneReapMs; a re-join is kept', () => {
    const { t } = fakeTables('me');
    const R = GOSSIP_PRESETS.local.tombstoneReapMs;
    t.joinNetwork('app', 0);
    t.applyNetwork({ node: 'b', network: 'app', ltime: 5, leave: true }, 100, false);
    t.applyNetwork({ node: 'c', network: 'app', ltime: 5, leave: true }, 200, false);
    t.applyNetwork({ node: 'c', network: 'app', ltime: 6, leave: false }, 300, false);
    t.leaveNetwork('app', 50);
    assert.equal(t.reap(300 + R), 1, 'b only: c re-joined, our own leave stays');
    assert.deepEqual(t.snapshot().networks.map((r) => r.node).sort(), ['c', 'me']);
  });
  test('news about our own entry we do not hold (a restart) is retracted with a newer tombstone', () => {
    const { t, sent } = fakeTables('me');
    t.joinNetwork('app', 0);
    sent.length = 0;
    t.applyEntry({ network: 'app', table: 't', key: 'old', value: v('x'), ltime: 40, owner: 'me', deleted: false }, 1, false);
    assert.equal(t.tableGet('app', 't', 'old'), undefined);
    assert.equal(sent.length, 1);
    const snap = t.snapshot().entries.find((e) => e.key === 'old')!;
    assert.ok(snap.deleted && snap.ltime > 40);
  });
});

describe('tables → broadcast queue: a newer version of a key replaces the queued one', () => {
  // memberlist's NamedBroadcast.Invalidates: without it every rewrite of an ack entry (issue 18 §1)
  // would queue one more message and the stale ones would go on using the send budget.
  const queued = (self: string) => {
    const q = new BroadcastQueue(4096);
    const t = new Tables(GOSSIP_PRESETS.local, self, { broadcast: (b) => q.queue(b), emitTable: () => undefined, memberState: () => 'alive', requestSync: () => undefined, sendDirect: () => true, syncWith: () => undefined, joinSpreadMs: () => 800, sendDirectAll: () => undefined });
    t.joinNetwork('app', 0);
    q.take(1e9, 0, 1, 99); // the network-join record, retired
    return { t, q };
  };
  const sent = (q: BroadcastQueue): Msg[] => q.take(1e9, 0, 1, 99).map((b) => {
    const d = decodePacket(b, false);
    assert.ok(d.ok);
    return d.msg;
  }).filter((m) => m.type === 'table');

  test('local rewrites and a delete of one key: one queued message, the newest', () => {
    const { t, q } = queued('me');
    t.tableSet('app', 'conv-acks', 'svc:S:0/me', v('one'), 0);
    t.tableSet('app', 'conv-acks', 'svc:S:0/me', v('two'), 0);
    t.tableSet('app', 'conv-acks', 'svc:S:0/other', v('x'), 0);
    assert.equal(q.size, 2);
    t.tableDelete('app', 'conv-acks', 'svc:S:0/other', 0);
    const out = sent(q);
    assert.equal(out.length, 2);
    const byKey = new Map(out.map((m) => [m.type === 'table' ? m.key : '', m]));
    const one = byKey.get('svc:S:0/me')!;
    assert.ok(one.type === 'table' && s(one.value) === 'two' && !one.deleted);
    const other = byKey.get('svc:S:0/other')!;
    assert.ok(other.type === 'table' && other.deleted, 'the tombstone replaced the queued write');
    assert.equal(t.queuedBytesByTable['conv-acks']! > 0, true);
  });

  test('a relayed newer version replaces the queued relay of the older one; an older one is not queued', () => {
    const { t, q } = queued('relay');
    const e = (ltime: number, value: string) => ({ network: 'app', table: 'conv-acks', key: 'svc:S:0/n2', value: v(value), ltime, owner: 'n2', deleted: false });
    assert.ok(t.applyEntry(e(5, 'old'), 1, true));
    assert.ok(t.applyEntry(e(9, 'new'), 1, true));
    assert.ok(!t.applyEntry(e(7, 'stale'), 1, true));
    const out = sent(q);
    assert.equal(out.length, 1);
    assert.ok(out[0]!.type === 'table' && s(out[0]!.value) === 'new');
  });
});

describe('tables over gossip (simulated network)', () => {
  test('writes reach the members of the network only; updates and deletes follow', () => {
    const { sim } = cluster(5, 11);
    for (const n of ['n0', 'n1', 'n2']) sim.act(n, (g, now) => g.joinNetwork('app', now));
    sim.runFor(1000);
    assert.deepEqual(sim.get('n4').node.networkNodes('app'), ['n0', 'n1', 'n2']);
    const evs: TableEvent[] = [];
    sim.onEvent = (n, e) => (n === 'n2' && 'key' in e ? evs.push(e) : undefined);
    sim.act('n0', (g, now) => g.tableSet('app', 'ep', 'web.1', v('10.0.0.5'), now));
    sim.runFor(1000);
    for (const n of ['n0', 'n1', 'n2']) assert.deepEqual(view(sim, n, 'app'), ['ep/web.1=10.0.0.5@n0']);
    for (const n of ['n3', 'n4']) assert.deepEqual(view(sim, n, 'app'), []);
    sim.act('n1', (g, now) => g.tableSet('app', 'ep', 'web.1', v('10.0.0.6'), now));
    sim.runFor(1000);
    for (const n of ['n0', 'n1', 'n2']) assert.deepEqual(view(sim, n, 'app'), ['ep/web.1=10.0.0.6@n1']);
    sim.act('n0', (g, now) => g.tableDelete('app', 'ep', 'web.1', now));
    sim.runFor(1000);
    for (const n of ['n0', 'n1', 'n2']) assert.deepEqual(view(sim, n, 'app'), []);
    assert.deepEqual(evs.map((e) => `${e.type}:${s(e.value)}@${e.owner}`), ['create:10.0.0.5@n0', 'update:10.0.0.6@n1', 'delete:@n0']);
  });

  test('a node joining the network later gets the existing entries; leaving removes its entries elsewhere', () => {
    const { sim } = cluster(4, 12);
    sim.act('n0', (g, now) => g.joinNetwork('app', now));
    sim.act('n1', (g, now) => g.joinNetwork('app', now));
    sim.act('n0', (g, now) => g.tableSet('app', 'ep', 'a', v('1'), now));
    sim.act('n1', (g, now) => g.tableSet('app', 'ep', 'b', v('2'), now));
    sim.runFor(2000);
    sim.act('n3', (g, now) => g.joinNetwork('app', now));
    sim.runFor(2000);
    assert.deepEqual(view(sim, 'n3', 'app'), ['ep/a=1@n0', 'ep/b=2@n1']);
    const dels: string[] = [];
    sim.onEvent = (n, e) => ('key' in e && e.type === 'delete' ? dels.push(`${n}:${e.key}`) : undefined);
    sim.act('n1', (g, now) => g.leaveNetwork('app', now));
    sim.runFor(2000);
    assert.deepEqual(view(sim, 'n0', 'app'), ['ep/a=1@n0']);
    assert.deepEqual(view(sim, 'n3', 'app'), ['ep/a=1@n0']);
    assert.deepEqual(view(sim, 'n1', 'app'), []);
    assert.deepEqual(dels.sort(), ['n0:b', 'n1:a', 'n1:b', 'n3:b']);
    assert.deepEqual(sim.get('n0').node.networkNodes('app'), ['n0', 'n3']);
  });

  test('entries of a killed node are removed everywhere (delete events)', () => {
    const { sim, names } = cluster(4, 13);
    for (const n of names) sim.act(n, (g, now) => g.joinNetwork('app', now));
    sim.act('n2', (g, now) => g.tableSet('app', 'ep', 'x', v('1'), now));
    sim.act('n0', (g, now) => g.tableSet('app', 'ep', 'y', v('2'), now));
    sim.runFor(1500);
    sim.kill('n2');
    sim.runUntilTrue(() => ['n0', 'n1', 'n3'].every((n) => sim.get(n).node.member('n2')?.state === 'dead'), 20_000);
    for (const n of ['n0', 'n1', 'n3']) {
      assert.deepEqual(view(sim, n, 'app'), ['ep/y=2@n0']);
      assert.deepEqual(sim.get(n).node.networkNodes('app'), ['n0', 'n1', 'n3']);
    }
  });

  test('a node restarted (same name) before anyone noticed retracts its stale entries and network records', () => {
    const { sim, names } = cluster(4, 14);
    for (const n of names) sim.act(n, (g, now) => g.joinNetwork('app', now));
    sim.act('n2', (g, now) => g.tableSet('app', 'ep', 'stale', v('1'), now));
    sim.runFor(1500);
    sim.restart('n2');
    sim.join('n2', ['n0']);
    sim.runFor(8000);
    for (const n of ['n0', 'n1', 'n3', 'n2']) {
      assert.deepEqual(view(sim, n, 'app'), [], n);
      assert.equal(sim.get(n).node.member('n2')?.state, 'alive');
    }
    assert.deepEqual(sim.get('n0').node.networkNodes('app'), ['n0', 'n1', 'n3']);
    sim.act('n2', (g, now) => g.joinNetwork('app', now));
    sim.act('n2', (g, now) => g.tableSet('app', 'ep', 'fresh', v('2'), now));
    sim.runFor(2000);
    for (const n of ['n0', 'n1', 'n3', 'n2']) assert.deepEqual(view(sim, n, 'app'), ['ep/fresh=2@n2'], n);
  });

  test('partition beyond the suspicion timeout, writes on both sides, heal: tables merge', () => {
    const { sim, names } = cluster(5, 15);
    for (const n of names) sim.act(n, (g, now) => g.joinNetwork('app', now));
    sim.runFor(1000);
    sim.partition([['n0', 'n1'], ['n2', 'n3', 'n4']]);
    sim.runFor(12_000);
    sim.act('n0', (g, now) => g.tableSet('app', 'ep', 'left-side', v('a'), now));
    sim.act('n3', (g, now) => g.tableSet('app', 'ep', 'right-side', v('b'), now));
    sim.runFor(2000);
    sim.heal();
    sim.runFor(15_000);
    for (const n of names) assert.deepEqual(view(sim, n, 'app'), ['ep/left-side=a@n0', 'ep/right-side=b@n3'], n);
  });
});
