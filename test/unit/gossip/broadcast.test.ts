import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BroadcastQueue, WALK_MISS_LIMIT } from '../../../src/core/gossip/broadcast.js';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (u: Uint8Array[]): string[] => u.map((x) => new TextDecoder().decode(x));

describe('transmit-limited broadcast queue', () => {
  test('each message is sent at most `limit` times, then retired', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 'm:a', bytes: b('a'), local: false });
    for (let i = 0; i < 3; i++) assert.deepEqual(str(q.take(1000, 2, 3, 64)), ['a']);
    assert.deepEqual(q.take(1000, 2, 3, 64), []);
    assert.equal(q.size, 0);
  });
  test('a newer message with the same key replaces the older one', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 'm:a', bytes: b('old'), local: false });
    q.take(1000, 2, 5, 64);
    q.queue({ key: 'm:a', bytes: b('new'), local: false });
    assert.equal(q.size, 1);
    assert.deepEqual(str(q.take(1000, 2, 5, 64)), ['new']);
  });
  test('local updates go before rebroadcasts; then fewest transmits; then newest', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: '1', bytes: b('r-old'), local: false });
    q.queue({ key: '2', bytes: b('r-new'), local: false });
    q.queue({ key: '3', bytes: b('local'), local: true });
    assert.deepEqual(str(q.take(1000, 2, 10, 64)), ['local', 'r-new', 'r-old']);
    q.queue({ key: '4', bytes: b('fresh'), local: false });
    assert.deepEqual(str(q.take(1000, 2, 10, 64)), ['local', 'fresh', 'r-new', 'r-old']);
  });
  test('respects the byte budget (with per-item overhead) and item cap', () => {
    const q = new BroadcastQueue(100);
    for (let i = 0; i < 10; i++) q.queue({ key: `k${i}`, bytes: new Uint8Array(98), local: false });
    assert.equal(q.take(500, 2, 10, 64).length, 5);
    assert.equal(q.take(5000, 2, 10, 3).length, 3);
  });
  test('oversized message goes alone only when asked', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 'big', bytes: new Uint8Array(3000), local: true });
    assert.equal(q.take(1400, 2, 10, 64).length, 0);
    assert.equal(q.take(1400, 2, 10, 64, undefined, true).length, 1);
  });
  test('per-destination filter (network scope)', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 't1', bytes: b('t1'), local: true, network: 'blue' });
    q.queue({ key: 'm', bytes: b('m'), local: false });
    assert.deepEqual(str(q.take(1000, 2, 10, 64, (x) => x.network === undefined)), ['m']);
    assert.deepEqual(str(q.take(1000, 2, 10, 64, () => true)), ['t1', 'm']);
  });
  test('bounded: the most-transmitted messages are evicted first', () => {
    const q = new BroadcastQueue(2);
    q.queue({ key: 'a', bytes: b('a'), local: false });
    q.take(1000, 2, 10, 64);
    q.queue({ key: 'b', bytes: b('b'), local: false });
    q.queue({ key: 'c', bytes: b('c'), local: false });
    assert.equal(q.size, 2);
    assert.equal(q.evicted, 1);
    assert.deepEqual(str(q.take(1000, 2, 10, 64)).sort(), ['b', 'c']);
  });
  test('invalidate and replace anywhere in the order; clear empties', () => {
    const q = new BroadcastQueue(100);
    for (const k of ['a', 'b', 'c', 'd']) q.queue({ key: k, bytes: b(k), local: false });
    q.take(1000, 2, 10, 2); // d, c sent once
    q.invalidate('c');
    q.invalidate('nope');
    q.queue({ key: 'a', bytes: b('a2'), local: false });
    assert.equal(q.size, 3);
    assert.deepEqual(str(q.take(1000, 2, 10, 64)), ['a2', 'b', 'd']);
    q.clear();
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(1000, 2, 10, 64), []);
  });
  test('under overload the oldest unsent news is evicted (newest first within a transmit count)', () => {
    const q = new BroadcastQueue(3);
    for (const k of ['1', '2', '3', '4', '5']) q.queue({ key: k, bytes: b(k), local: false });
    assert.equal(q.evicted, 2);
    assert.deepEqual(str(q.take(1000, 2, 10, 64)), ['5', '4', '3']);
  });
  test('a smaller message later in the order still fills the space a big one left', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 'small', bytes: new Uint8Array(10), local: false });
    q.queue({ key: 'big', bytes: new Uint8Array(500), local: false });
    q.queue({ key: 'mid', bytes: new Uint8Array(300), local: false });
    // budget 400: mid (302) fits, big (502) does not, small (12) still does
    assert.deepEqual(q.take(400, 2, 10, 64).map((x) => x.length), [300, 10]);
  });
  test('a lower limit (fewer members) retires messages already sent that often at their next send', () => {
    const q = new BroadcastQueue(100);
    q.queue({ key: 'a', bytes: b('a'), local: false });
    q.take(1000, 2, 10, 64);
    q.take(1000, 2, 10, 64);
    assert.deepEqual(str(q.take(1000, 2, 1, 64)), ['a']);
    assert.equal(q.size, 0);
  });
  test('a relay gets through under sustained local writes, and locals under a flood of relays (issue 18 §1)', () => {
    // Simulated gossip rounds at churn: each round the node writes 60 records of its own (~100 B) and sends
    // 3 packets (1,360 B budget): 60 × 102 B > 3 × 1,360 B, so local news alone overfills every packet.
    // With every local update before any relay, the relay queued at round 10 was never sent (it sat behind
    // fresher local news until evicted); with the relay share it leaves in the round it arrived.
    const rounds = (flood: boolean, one: boolean) => {
      const q = new BroadcastQueue(4096);
      const sentAt: number[] = [];
      let own = 0;
      for (let round = 0; round < 50; round++) {
        for (let i = 0; i < 60; i++) q.queue({ key: `f${round}-${i}`, bytes: new Uint8Array(100), local: flood });
        // the same size as the rest: a small one would ride in the bytes a packet of 100 B records leaves over
        if (round === 10) q.queue({ key: 'one', bytes: new Uint8Array(100).fill(1), local: one });
        for (let p = 0; p < 3; p++) {
          const out = q.take(1360, 2, 4, 64);
          if (out.some((x) => x[0] === 1)) sentAt.push(round);
          if (round === 20) own += out.filter((x) => x[0] === 0).length;
        }
      }
      return { sentAt, floodSentInRound20: own };
    };
    const relay = rounds(true, false);
    // 4 transmits: in each of round 10's 3 packets (3 peers), then once more
    assert.deepEqual(relay.sentAt, [10, 10, 10, 11], 'the relay is sent in the round it arrived');
    assert.ok(relay.floodSentInRound20 >= 30, `local news keeps most of the budget (${relay.floodSentInRound20} of 39 per round)`);
    const local = rounds(false, true);
    assert.deepEqual(local.sentAt, [10, 10, 10, 11], 'a local update is not starved by relays either');
  });

  test('a walk ends after WALK_MISS_LIMIT messages in a row it cannot take: the cost of one take is bounded, not O(queue)', () => {
    // Same transmits: newest first, so the small (oldest) message comes last.
    const q = new BroadcastQueue(10_000);
    q.queue({ key: 'small', bytes: new Uint8Array(10), local: true });
    for (let i = 0; i < 3000; i++) q.queue({ key: `big${i}`, bytes: new Uint8Array(500), local: true });
    let examined = 0;
    const accept = () => (examined++, true);
    assert.deepEqual(q.take(100, 2, 4, 100, accept), [], 'the small one lies beyond the limit: left for the next packets');
    assert.ok(examined <= 2 * WALK_MISS_LIMIT, `examined ${examined}`);
    // Within the limit, a smaller later message is still found.
    const r = new BroadcastQueue(100);
    r.queue({ key: 'small', bytes: new Uint8Array(10), local: true });
    for (let i = 0; i < WALK_MISS_LIMIT - 1; i++) r.queue({ key: `big${i}`, bytes: new Uint8Array(500), local: true });
    assert.deepEqual(r.take(100, 2, 4, 100).map((b) => b.length), [10]);
    // Messages for networks the destination is not on count as misses too; a pick starts the count again.
    const n = new BroadcastQueue(10_000);
    for (let i = 0; i < 40; i++) n.queue({ key: `x${i}`, bytes: new Uint8Array(20), local: true, network: 'x' });
    n.queue({ key: 'y0', bytes: new Uint8Array(20), local: true, network: 'y' });
    for (let i = 0; i < 40; i++) n.queue({ key: `x${i + 40}`, bytes: new Uint8Array(20), local: true, network: 'x' });
    n.queue({ key: 'y1', bytes: new Uint8Array(20), local: true, network: 'y' });
    assert.equal(n.take(1000, 2, 4, 100, (b) => b.network === 'y').length, 2);
  });
});
