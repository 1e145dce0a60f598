/**
 * A restarted agent re-publishes what it still holds (an adopted task's endpoint record) with a
 * fresh Lamport clock, often BEFORE it hears its own entries of the previous run from its peers
 * (its join push-pull, or a peer's, can arrive after the worker's adopt). That old news carries
 * a higher Lamport time; it must not delete, or replace, the entry the node holds now: the node
 * re-asserts its current value with a newer time instead (cluster-faults, staggered restarts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GOSSIP_PRESETS } from '../../../src/core/gossip/config.js';
import { Tables } from '../../../src/core/gossip/tables.js';
import type { BroadcastItem } from '../../../src/core/gossip/broadcast.js';
import { cluster } from './helpers.js';

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const s = (u: Uint8Array): string => new TextDecoder().decode(u);

function fakeTables(self: string) {
  const sent: BroadcastItem[] = [];
  const t = new Tables(GOSSIP_PRESETS.local, self, {
    broadcast: (b) => sent.push(b), emitTable: () => undefined, memberState: () => 'alive', requestSync: () => undefined, sendDirect: () => true, syncWith: () => undefined, joinSpreadMs: () => 800, sendDirectAll: () => undefined,
  });
  return { t, sent };
}

describe('tables: a restarted node\'s fresh entries survive its own stale news', () => {
  test('older-run live entry with a higher time: the held value is re-asserted, newer', () => {
    const { t, sent } = fakeTables('me');
    t.joinNetwork('app', 0);
    t.tableSet('app', 'ep', 'task1', v('now'), 1);
    sent.length = 0;
    assert.ok(t.applyEntry({ network: 'app', table: 'ep', key: 'task1', value: v('before'), ltime: 150, owner: 'me', deleted: false }, 2, false));
    const e = t.tableGet('app', 'ep', 'task1');
    assert.equal(e && s(e.value), 'now');
    assert.ok(e!.ltime > 150, `re-asserted newer than the stale news (ltime ${e!.ltime})`);
    assert.equal(sent.length, 1, 'and broadcast');
  });
  test('older-run tombstone with a higher time: the held value is re-asserted too', () => {
    const { t } = fakeTables('me');
    t.joinNetwork('app', 0);
    t.tableSet('app', 'ep', 'task1', v('now'), 1);
    t.applyEntry({ network: 'app', table: 'ep', key: 'task1', value: new Uint8Array(0), ltime: 150, owner: 'me', deleted: true }, 2, false);
    const e = t.tableGet('app', 'ep', 'task1');
    assert.equal(e && s(e.value), 'now');
    assert.ok(e!.ltime > 150);
  });
  test('simulated: n2 restarts, publishes at once, then rejoins; every node ends with the fresh value', () => {
    const { sim, names } = cluster(4, 21);
    for (const n of names) sim.act(n, (g, now) => g.joinNetwork('app', now));
    sim.act('n2', (g, now) => { for (let i = 0; i < 50; i++) g.tableSet('app', 'ep', 'task', v(`old${i}`), now); });
    sim.runFor(1500);
    sim.restart('n2');
    sim.act('n2', (g, now) => { g.joinNetwork('app', now); g.tableSet('app', 'ep', 'task', v('fresh'), now); });
    sim.join('n2', ['n0']);
    sim.runFor(8000);
    for (const n of names) {
      const got = sim.get(n).node.tableEntries('app').map((e) => `${e.key}=${s(e.value)}@${e.owner}`);
      assert.deepEqual(got, ['task=fresh@n2'], n);
    }
  });
});
