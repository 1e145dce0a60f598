/**
 * Rejoin after a restart (core/gossip/rejoin.ts): which members are remembered, the snapshot's text,
 * the seeds of each join attempt (configured always, a bounded window of remembered ones, another per retry).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import {
  MEMBER_SNAPSHOT_MAX, REJOIN_SEEDS_PER_ATTEMPT, decodeMemberSnapshot, encodeMemberSnapshot, membersToRemember, planIsEmpty, planRejoin, seedsForAttempt,
} from '../../../src/core/gossip/index.js';

test('membersToRemember: alive and suspect, never self, dead or left; sorted by name', () => {
  const rows = [
    { name: 'n3', addr: '10.0.0.3:7946', state: 'suspect' as const },
    { name: 'n1', addr: '10.0.0.1:7946', state: 'alive' as const },
    { name: 'n2', addr: '10.0.0.2:7946', state: 'alive' as const },
    { name: 'n4', addr: '10.0.0.4:7946', state: 'left' as const },
    { name: 'n5', addr: '10.0.0.5:7946', state: 'dead' as const },
  ];
  assert.deepEqual(membersToRemember(rows, 'n1'), [{ name: 'n2', addr: '10.0.0.2:7946' }, { name: 'n3', addr: '10.0.0.3:7946' }]);
  assert.deepEqual(membersToRemember(rows.filter((r) => r.name === 'n1'), 'n1'), []);
  const many = Array.from({ length: 100 }, (_, i) => ({ name: `m${String(i).padStart(3, '0')}`, addr: `10.1.0.${i}:7946`, state: 'alive' as const }));
  assert.equal(membersToRemember(many, 'x').length, MEMBER_SNAPSHOT_MAX);
});

test('snapshot text: round trip; corrupt, truncated or foreign files throw (the agent ignores them)', () => {
  const list = [{ name: 'n2', addr: '10.0.0.2:7946' }, { name: 'n3', addr: '[fd00::3]:7946' }];
  const text = encodeMemberSnapshot(list);
  assert.deepEqual(decodeMemberSnapshot(text), list);
  assert.equal(encodeMemberSnapshot(list), text, 'same list, same text (the writer skips unchanged lists)');
  const bad: Array<[string, RegExp]> = [
    [text.slice(0, text.length - 8), /JSON|Unexpected|Unterminated/],
    ['', /JSON|Unexpected/],
    ['null', /not a JSON object/],
    ['{"version":2,"members":[]}', /unknown version 2/],
    ['{"version":1}', /no members array/],
    ['{"version":1,"members":[{"name":"n2"}]}', /without a name and an address/],
    ['{"version":1,"members":[7]}', /without a name and an address/],
    ['{"version":1,"members":[{"name":"","addr":"x:1"}]}', /without a name and an address/],
  ];
  for (const [t, re] of bad) assert.throws(() => decodeMemberSnapshot(t), re, JSON.stringify(t));
});

test('planRejoin: configured ∪ remembered, deduplicated, own address excluded, remembered shuffled', () => {
  const self = '10.0.0.1:7946';
  const p = planRejoin(['10.0.0.2:7946', '10.0.0.2:7946', self], [self, '10.0.0.2:7946', '10.0.0.3:7946', '10.0.0.4:7946', '10.0.0.3:7946'], self, seededRng(1));
  assert.deepEqual(p.configured, ['10.0.0.2:7946']);
  assert.deepEqual([...p.remembered].sort(), ['10.0.0.3:7946', '10.0.0.4:7946']);
  assert.equal(planIsEmpty(p), false);
  // the lab's n1: no configured seeds; only remembered ones → not joined at start
  const n1 = planRejoin([], ['10.0.0.2:7946'], self, seededRng(1));
  assert.deepEqual(n1, { configured: [], remembered: ['10.0.0.2:7946'] });
  assert.equal(planIsEmpty(n1), false);
  // a first node (nothing configured, nothing remembered), or one that only remembers itself, is joined at once
  assert.equal(planIsEmpty(planRejoin([], [], self, seededRng(1))), true);
  assert.equal(planIsEmpty(planRejoin([self], [self], self, seededRng(1))), true);
  // the shuffle is a permutation, and depends on the rng (different nodes start with different members)
  const addrs = Array.from({ length: 63 }, (_, i) => `10.0.1.${i}:7946`);
  const a = planRejoin([], addrs, self, seededRng(1)).remembered;
  const b = planRejoin([], addrs, self, seededRng(2)).remembered;
  assert.deepEqual([...a].sort(), [...addrs].sort());
  assert.notDeepEqual(a, b);
});

test('seedsForAttempt: configured every time, a window of remembered ones, each attempt another, all within ⌈n/k⌉ attempts', () => {
  const remembered = Array.from({ length: 63 }, (_, i) => `10.0.1.${i}:7946`);
  const p = planRejoin(['10.0.0.9:7946'], remembered, '10.0.0.1:7946', seededRng(7));
  const attempts = Math.ceil(remembered.length / REJOIN_SEEDS_PER_ATTEMPT);
  const seen = new Set<string>();
  let prev: string[] = [];
  for (let k = 0; k < attempts; k++) {
    const s = seedsForAttempt(p, k);
    assert.equal(s[0], '10.0.0.9:7946', `attempt ${k}: the configured seed first`);
    assert.equal(s.length, 1 + REJOIN_SEEDS_PER_ATTEMPT, `attempt ${k}: bounded`);
    assert.equal(new Set(s).size, s.length, `attempt ${k}: no duplicates`);
    assert.notDeepEqual(s.slice(1), prev.slice(1), `attempt ${k}: another subset than the last`);
    for (const x of s.slice(1)) seen.add(x);
    prev = s;
  }
  assert.equal(seen.size, remembered.length, 'every remembered member tried');
  // table: small lists and wrap-around
  const small = { configured: [], remembered: ['a:1', 'b:1'] };
  const rows: Array<[number, string[]]> = [[0, ['a:1', 'b:1']], [1, ['b:1', 'a:1']], [2, ['a:1', 'b:1']]];
  for (const [k, want] of rows) assert.deepEqual(seedsForAttempt(small, k), want, `attempt ${k}`);
  const five = { configured: ['s:1'], remembered: ['a:1', 'b:1', 'c:1', 'd:1', 'e:1'] };
  const rows5: Array<[number, string[]]> = [[0, ['s:1', 'a:1', 'b:1', 'c:1']], [1, ['s:1', 'd:1', 'e:1', 'a:1']], [2, ['s:1', 'b:1', 'c:1', 'd:1']]];
  for (const [k, want] of rows5) assert.deepEqual(seedsForAttempt(five, k), want, `attempt ${k}`);
  assert.deepEqual(seedsForAttempt({ configured: ['s:1'], remembered: [] }, 3), ['s:1']);
});
