/**
 * The remote endpoints' policy (core/overlay/remotes.ts) as table tests on simulated time: each
 * row is a script of events at given times and `tick`s at the deadlines the table asks for,
 * with the actions it must drain and what it must hold. No clock, no timers: `now` is a number.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteTable, remoteKey, type RemotesAction, type RemotesEvent } from '../../../src/core/overlay/remotes.js';
import { encodeEndpoint, type EndpointRecord } from '../../../src/core/endpoints.js';

const GRACE = 1000;
const rec = (taskId: string, node: string, network = 'net1', ip = '10.0.1.5'): EndpointRecord => ({
  v: 1, taskId, taskName: 'web.1', serviceId: 's1', serviceName: 'web', network, networkName: network, ip, mac: '02:42:0a:00:01:05',
  node, nodeIp: node === 'n2' ? '192.168.1.2' : '192.168.1.3', vip: null, endpointMode: 'vip', aliases: [], ports: [], state: 'running',
});
const set = (key: string, owner: string, network = 'net1'): RemotesEvent => ({ type: 'entry-set', network, key, owner, value: encodeEndpoint(rec(key, owner, network)) });
const del = (key: string, ownerDead = false, network = 'net1'): RemotesEvent => ({ type: 'entry-delete', network, key, ownerDead });
const member = (name: string, change: 'dead' | 'alive' | 'left' | 'other'): RemotesEvent => ({ type: 'member', name, change });

/** Short form of an action for the tables. */
const short = (a: RemotesAction): string =>
  a.type === 'remote-add' ? `+${a.key}` : a.type === 'remote-remove' ? `-${a.key}` : a.type === 'members-changed' ? 'members' : `bad:${a.reason}`;

type Step = [at: number, what: RemotesEvent | 'tick'];
interface Row {
  name: string;
  steps: Step[];
  /** Actions drained over the whole script, in order. */
  actions: string[];
  /** Remote keys held at the end. */
  held: string[];
  /** nextDeadline() at the end. */
  deadline: number | null;
}

const K = (key: string): string => remoteKey('net1', key);

const rows: Row[] = [
  {
    name: 'a delete by a live owner removes at once',
    steps: [[0, set('t1', 'n2')], [5, del('t1')]],
    actions: [`+${K('t1')}`, `-${K('t1')}`], held: [], deadline: null,
  },
  {
    name: 'the owner died: its deletes are held for the grace, then removed at its end',
    steps: [[0, set('t1', 'n2')], [100, member('n2', 'dead')], [100, del('t1')], [1099, 'tick'], [1100, 'tick']],
    actions: [`+${K('t1')}`, 'members', `-${K('t1')}`, 'members'], held: [], deadline: null,
  },
  {
    name: 'the owner comes back and republishes within the grace: nothing was ever removed',
    steps: [[0, set('t1', 'n2')], [100, member('n2', 'dead')], [100, del('t1')], [600, member('n2', 'alive')], [700, set('t1', 'n2')], [1100, 'tick'], [5000, 'tick']],
    actions: [`+${K('t1')}`, 'members', 'members', `+${K('t1')}`], held: [K('t1')], deadline: null,
  },
  {
    name: 'the owner comes back without its task: the held removal still happens at the grace',
    steps: [[0, set('t1', 'n2')], [100, member('n2', 'dead')], [100, del('t1')], [600, member('n2', 'alive')], [1100, 'tick']],
    actions: [`+${K('t1')}`, 'members', 'members', `-${K('t1')}`], held: [], deadline: null,
  },
  {
    name: 'a death gossip holds but has not told as an event (ownerDead) starts the grace at the delete',
    steps: [[0, set('t1', 'n2')], [300, del('t1', true)], [1299, 'tick'], [1300, 'tick']],
    actions: [`+${K('t1')}`, `-${K('t1')}`, 'members'], held: [], deadline: null,
  },
  {
    name: 'a graceful leave flushes the held removals at once',
    steps: [[0, set('t1', 'n2')], [0, set('t2', 'n3')], [100, member('n2', 'dead')], [100, del('t1')], [200, member('n2', 'left')]],
    actions: [`+${K('t1')}`, `+${K('t2')}`, 'members', `-${K('t1')}`, 'members'], held: [K('t2')], deadline: null,
  },
  {
    name: 'the grace counts from the death, not from the delete',
    steps: [[0, set('t1', 'n2')], [100, member('n2', 'dead')], [900, del('t1')], [1100, 'tick']],
    actions: [`+${K('t1')}`, 'members', `-${K('t1')}`, 'members'], held: [], deadline: null,
  },
  {
    name: 'other membership changes only ask for the guard to be recomputed',
    steps: [[0, member('n4', 'other')]],
    actions: ['members'], held: [], deadline: null,
  },
  {
    name: 'own records, own node in the record, a delete of an unknown key: nothing',
    steps: [[0, set('t1', 'me')], [0, { type: 'entry-set', network: 'net1', key: 't9', owner: 'n2', value: encodeEndpoint(rec('t9', 'me')) }], [0, del('zz')]],
    actions: [], held: [], deadline: null,
  },
  {
    name: 'a bad record is reported, never applied; a record naming another network is counted',
    steps: [[0, { type: 'entry-set', network: 'net1', key: 't1', owner: 'n2', value: new TextEncoder().encode('{"v":9}') }], [0, set('t2', 'n2', 'other')], [0, { ...set('t2', 'n2', 'other'), network: 'net1' } as RemotesEvent]],
    actions: ['bad:*', `+${remoteKey('other', 't2')}`], held: [remoteKey('other', 't2')], deadline: null,
  },
  {
    name: 'forgetting a network drops its remotes, held ones included (no removal action: the service forgets them)',
    steps: [[0, set('t1', 'n2')], [0, set('t2', 'n3', 'other')], [100, member('n2', 'dead')], [100, del('t1')], [200, { type: 'network-forget', network: 'net1' }]],
    actions: [`+${K('t1')}`, `+${remoteKey('other', 't2')}`, 'members'], held: [remoteKey('other', 't2')], deadline: 1100,
  },
];

describe('RemoteTable: dead-member grace (simulated time)', () => {
  for (const row of rows) {
    test(row.name, () => {
      const t = new RemoteTable({ nodeName: 'me', deadGraceMs: GRACE });
      const got: string[] = [];
      for (const [at, what] of row.steps) {
        if (what === 'tick') t.tick(at);
        else t.handle(what, at);
        got.push(...t.drain().map(short).map((s) => (s.startsWith('bad:') ? 'bad:*' : s)));
      }
      assert.deepEqual(got, row.actions);
      assert.deepEqual(t.entries().map(([k]) => k).sort(), row.held);
      assert.equal(t.nextDeadline(), row.deadline);
    });
  }

  test('nextDeadline is the earliest held removal or end of a grace; tick before it does nothing', () => {
    const t = new RemoteTable({ nodeName: 'me', deadGraceMs: GRACE });
    t.handle(set('t1', 'n2'), 0);
    t.handle(set('t2', 'n3'), 0);
    t.handle(member('n2', 'dead'), 100);
    t.handle(member('n3', 'dead'), 400);
    t.handle(del('t2'), 450);
    t.handle(del('t1'), 500);
    t.drain();
    assert.equal(t.nextDeadline(), 1100);
    assert.equal(t.pending, 2);
    t.tick(1099);
    assert.deepEqual(t.drain(), []);
    t.tick(1100);
    assert.deepEqual(t.drain().map(short), [`-${K('t1')}`, 'members']);
    assert.equal(t.nextDeadline(), 1400);
    t.tick(1400);
    assert.deepEqual(t.drain().map(short), [`-${K('t2')}`, 'members']);
    assert.equal(t.nextDeadline(), null);
  });

  test('badRecords counts by reason', () => {
    const t = new RemoteTable({ nodeName: 'me', deadGraceMs: GRACE });
    t.handle({ type: 'entry-set', network: 'net1', key: 't1', owner: 'n2', value: new Uint8Array([1, 2]) }, 0);
    t.handle({ ...set('t2', 'n2', 'other'), network: 'net1' } as RemotesEvent, 0);
    const bad = t.badRecords();
    assert.equal(bad['endpoint-network'], 1);
    assert.equal(Object.values(bad).reduce((a, b) => a + b, 0), 2);
  });
});

describe('RemoteTable.guardAllow', () => {
  const members = [
    { name: 'n1', addr: '192.168.1.1:7946', state: 'alive' as const },
    { name: 'n2', addr: '192.168.1.2:7946', state: 'suspect' as const },
    { name: 'n3', addr: '192.168.1.3:7946', state: 'dead' as const },
    { name: 'n4', addr: '192.168.1.4:7946', state: 'left' as const },
    { name: 'n5', addr: '192.168.1.5:7946', state: 'dead' as const },
  ];
  const rows: Array<[string, number, string[]]> = [
    ['within n3\'s grace', 500, ['192.168.1.1', '192.168.1.2', '192.168.1.3']],
    ['at its end', 1100, ['192.168.1.1', '192.168.1.2']],
  ];
  for (const [name, now, want] of rows) {
    test(`${name} (t=${now}): live members, plus dead ones still in their grace; left and unseen-dead never`, () => {
      const t = new RemoteTable({ nodeName: 'me', deadGraceMs: GRACE });
      t.handle(member('n3', 'dead'), 100);
      assert.deepEqual(t.guardAllow(members, now), want);
    });
  }
});
