/**
 * Confirmed drains: the pure core (ack keys, who is pending, outcome, ack decision) as table
 * tests, then DrainAcker + DrainWaiter on three in-memory nodes sharing one fake gossip bus
 * (tables replicated to the members of a network, events on pump): acked when every live
 * member acked, a dead member not waited for, a silent live member → timeout, the ingress
 * mirror waited for, acks retracted when the record goes. Time is simulated (ManualClock): nothing
 * sleeps; `step(ms)` moves the clock and lets the loops' runs finish.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ManualClock } from '../../../../src/core/clock.js';
import {
  DRAIN_ACK_TABLE, ackAction, ackKey, awaitsAck, decodeAck, drainOutcome, encodeAck, parseAckKey, pendingAcks,
} from '../../../../src/core/drain/index.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent, MemberState } from '../../../../src/core/gossip/index.js';
import type { GossipPort } from '../../../../src/agent/overlay/overlay.js';
import { DrainAcker } from '../../../../src/agent/drain/ack.js';
import { DrainWaiter } from '../../../../src/agent/drain/wait.js';
import { FakeGossipBus as Bus } from '../../../helpers/fake-gossip.js';

describe('drain core', () => {
  test('ack keys round-trip; anything else is not an ack key', () => {
    assert.equal(ackKey('t1', 'n1'), 't1/n1');
    assert.deepEqual(parseAckKey('t1/n1'), { taskId: 't1', node: 'n1' });
    for (const bad of ['', 't1', '/n1', 't1/', 't1/n1/x', '/']) assert.equal(parseAckKey(bad), null, bad);
  });

  test('ack values: encode/decode; garbage → null', () => {
    assert.deepEqual(decodeAck(encodeAck({ v: 1, node: 'n2', ms: 12 })), { v: 1, node: 'n2', ms: 12 });
    const enc = new TextEncoder();
    for (const bad of ['', 'x', '{}', '{"v":2,"node":"n","ms":1}', '{"v":1,"node":3,"ms":1}', '{"v":1,"node":"n","ms":"1"}', 'null']) {
      assert.equal(decodeAck(enc.encode(bad)), null, bad);
    }
  });

  test('who is waited for, by member state', () => {
    const rows: Array<[MemberState | undefined, boolean]> = [['alive', true], ['suspect', true], ['dead', false], ['left', false], [undefined, false]];
    for (const [st, want] of rows) assert.equal(awaitsAck(st), want, String(st));
  });

  test('pendingAcks table', () => {
    const st: Record<string, MemberState> = { n1: 'alive', n2: 'alive', n3: 'dead', n4: 'suspect', n5: 'left' };
    const state = (n: string) => st[n];
    const rows: Array<[string, Parameters<typeof pendingAcks>[1], Array<{ network: string; node: string }>]> = [
      ['nobody acked', [{ network: 'a', nodes: ['n1', 'n2'], ackKeys: [] }], [{ network: 'a', node: 'n1' }, { network: 'a', node: 'n2' }]],
      ['all acked', [{ network: 'a', nodes: ['n1', 'n2'], ackKeys: ['T/n1', 'T/n2'] }], []],
      ['dead and left not waited for', [{ network: 'a', nodes: ['n1', 'n3', 'n5'], ackKeys: ['T/n1'] }], []],
      ['suspect waited for', [{ network: 'a', nodes: ['n1', 'n4'], ackKeys: ['T/n1'] }], [{ network: 'a', node: 'n4' }]],
      ['unknown node not waited for', [{ network: 'a', nodes: ['n1', 'zz'], ackKeys: ['T/n1'] }], []],
      ['acks of another task ignored', [{ network: 'a', nodes: ['n1'], ackKeys: ['U/n1', 'garbage', 'T/n1/x'] }], [{ network: 'a', node: 'n1' }]],
      ['per network: an ack on a does not count on b', [
        { network: 'b', nodes: ['n2'], ackKeys: [] }, { network: 'a', nodes: ['n2'], ackKeys: ['T/n2'] },
      ], [{ network: 'b', node: 'n2' }]],
      ['duplicates listed once', [{ network: 'a', nodes: ['n2', 'n2'], ackKeys: [] }], [{ network: 'a', node: 'n2' }]],
      ['no networks', [], []],
    ];
    for (const [name, nets, want] of rows) assert.deepEqual(pendingAcks('T', nets, state), want, name);
  });

  test('drainOutcome table', () => {
    const rows: Array<[number, number, number, number, string]> = [
      [0, 0, 10_000, 0, 'acked'], [0, 20_000, 10_000, 0, 'acked'], [0, 9_999, 10_000, 1, 'waiting'],
      [0, 10_000, 10_000, 1, 'timeout'], [100, 50, 10_000, 2, 'waiting'],
    ];
    for (const [s, n, t, p, want] of rows) assert.equal(drainOutcome(s, n, t, p), want, `${s} ${n} ${t} ${p}`);
  });

  test('ackAction table', () => {
    const rows: Array<[Parameters<typeof ackAction>, string]> = [
      [['draining', true, false, false], 'ack'],
      [['draining', false, false, false], 'none'], // LB not applied yet
      [['draining', true, true, false], 'none'], // DNS still serves it
      [['draining', true, false, true], 'none'], // already acked
      [['running', true, false, true], 'retract'],
      [[undefined, true, false, true], 'retract'],
      [['running', true, false, false], 'none'],
      [[undefined, false, true, false], 'none'],
    ];
    for (const [args, want] of rows) assert.equal(ackAction(...args), want, JSON.stringify(args));
  });
});

// ---- three nodes on a fake gossip bus ----

interface Entry { value: Uint8Array; owner: string }

const log = pino({ level: 'silent' });
const rec = (taskId: string, network: string, state: 'running' | 'draining', node = 'n1'): EndpointRecord => ({
  v: 1, taskId, taskName: 'web.1', serviceId: 's1', serviceName: 'web', network, networkName: network, ip: '10.30.0.5', mac: '02:42:0a:1e:00:05',
  node, nodeIp: '10.99.1.1', vip: null, endpointMode: 'vip', aliases: [], ports: [], state,
});

/** Lets promise callbacks run (no simulated time passes). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
};

function cluster(opts: { timeoutMs?: number; silent?: string[] } = {}) {
  const clock = new ManualClock();
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  const bus = new Bus();
  const applied = new Map<string, boolean>();
  /** Nodes whose LB view throws (a bug there must delay the ack, not kill the acker). */
  const broken = new Set<string>();
  const ackers: DrainAcker[] = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const g = bus.node(name);
    applied.set(name, true);
    if (!opts.silent?.includes(name)) {
      ackers.push(new DrainAcker({ nodeName: name, gossip: g, clock, log, lbApplied: () => {
        if (broken.has(name)) throw new Error('lb view broken');
        return applied.get(name)!;
      }, recheckMs: 20 }));
    }
  }
  bus.join('net1', 'n1', 'n2', 'n3');
  const waiter = new DrainWaiter({ nodeName: 'n1', gossip: bus.nodes.get('n1')!, clock, log, timeoutMs: opts.timeoutMs ?? 5000 });
  const n1 = bus.nodes.get('n1')!;
  const publish = (net: string, state: 'running' | 'draining') => {
    n1.core.tableSet(net, ENDPOINT_TABLE, 'T1', encodeEndpoint(rec('T1', net, state)), 0);
    n1.pump();
  };
  const start = async () => {
    for (const a of ackers) await a.start();
  };
  const stop = async () => {
    for (const a of ackers) await a.stop();
    await waiter.stop();
  };
  return { bus, applied, broken, ackers, waiter, publish, n1, start, stop, step, clock };
}

const acksOn = (bus: Bus, net: string) => [...(bus.data.get(net) ?? [])].filter(([k]) => k.startsWith(`${DRAIN_ACK_TABLE}\0`)).map(([k]) => k.split('\0')[1]).sort();

describe('DrainAcker + DrainWaiter on three nodes', () => {
  test('acked once every member\'s LB applied the drain; acks retracted when the record goes', async () => {
    const c = cluster();
    await c.start();
    try {
      c.publish('net1', 'running');
      c.applied.set('n2', false); // n2's LB has not applied yet
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(0);
      assert.deepEqual(acksOn(c.bus, 'net1'), ['T1/n1', 'T1/n3']);
      c.applied.set('n2', true); // its recheck picks it up
      await c.step(19);
      assert.deepEqual(acksOn(c.bus, 'net1'), ['T1/n1', 'T1/n3'], 'no recheck before recheckMs');
      await c.step(1);
      const r = await p;
      assert.equal(r.ms, 20);
      assert.equal(r.outcome, 'acked');
      assert.deepEqual(r.acks.map((a) => a.node).sort(), ['n1', 'n2', 'n3']);
      assert.ok(r.acks.every((a) => typeof a.ms === 'number'));
      assert.deepEqual(r.pending, []);
      c.n1.core.tableDelete('net1', ENDPOINT_TABLE, 'T1', 0);
      c.n1.pump();
      assert.deepEqual(acksOn(c.bus, 'net1'), [], 'acks deleted with the record');
      assert.equal(c.ackers[1]!.view().retracts, 1);
    } finally {
      await c.stop();
    }
  });

  test('an evaluation that throws is retried with back-off (the ack comes late, the acker lives)', async () => {
    const c = cluster();
    await c.start();
    try {
      c.publish('net1', 'running');
      c.broken.add('n2');
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(0);
      assert.deepEqual(acksOn(c.bus, 'net1'), ['T1/n1', 'T1/n3']);
      c.broken.delete('n2');
      await c.step(499);
      assert.deepEqual(acksOn(c.bus, 'net1'), ['T1/n1', 'T1/n3'], 'retried after the loop\'s first back-off (500 ms)');
      await c.step(1);
      const r = await p;
      assert.equal(r.outcome, 'acked');
      assert.equal(r.ms, 500);
    } finally {
      await c.stop();
    }
  });

  test('a dead member is not waited for (also when it dies during the wait)', async () => {
    const c = cluster({ silent: ['n3'] });
    await c.start();
    try {
      c.publish('net1', 'running');
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(50);
      c.bus.kill('n3');
      const r = await p;
      assert.equal(r.outcome, 'acked');
      assert.equal(r.ms, 50, 'confirmed when n3 was declared dead');
    } finally {
      await c.stop();
    }
  });

  test('a live member that never acks: timeout, reported with who is pending', async () => {
    const c = cluster({ silent: ['n3'], timeoutMs: 300 });
    await c.start();
    try {
      c.publish('net1', 'running');
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(299);
      assert.equal(c.waiter.counters.timedOut, 0);
      await c.step(1);
      const r = await p;
      assert.equal(r.outcome, 'timeout');
      assert.deepEqual(r.pending, [{ network: 'net1', node: 'n3' }]);
      assert.equal(r.ms, 300);
      assert.equal(c.waiter.counters.timedOut, 1);
    } finally {
      await c.stop();
    }
  });

  test('the ingress mirror of the task is waited for too', async () => {
    const c = cluster();
    c.bus.join(INGRESS_NETWORK, 'n1', 'n2', 'n3');
    await c.start();
    try {
      c.publish('net1', 'running');
      c.publish(INGRESS_NETWORK, 'running');
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(100);
      let settled = false;
      void p.then(() => (settled = true));
      await c.step(50);
      assert.equal(settled, false, 'ingress still running: not confirmed');
      c.publish(INGRESS_NETWORK, 'draining');
      await c.step(0);
      const r = await p;
      assert.equal(r.outcome, 'acked');
      assert.deepEqual(r.networks, [INGRESS_NETWORK, 'net1']);
      assert.equal(r.acks.length, 6);
    } finally {
      await c.stop();
    }
  });

  test('a record running again retracts the ack; an ack written under another node\'s name is ignored', async () => {
    const c = cluster({ silent: ['n2'], timeoutMs: 300 });
    await c.start();
    try {
      c.publish('net1', 'draining');
      await c.step(0);
      assert.deepEqual(acksOn(c.bus, 'net1'), ['T1/n1', 'T1/n3']);
      c.publish('net1', 'running');
      await c.step(0);
      assert.deepEqual(acksOn(c.bus, 'net1'), []);
      // n3 forges n2's ack: the waiter only counts a node speaking for itself.
      c.bus.write('n3', 'net1', DRAIN_ACK_TABLE, 'T1/n2', encodeAck({ v: 1, node: 'n2', ms: 0 }));
      const p = c.waiter.wait('T1', ['net1']);
      c.publish('net1', 'draining');
      await c.step(300);
      const r = await p;
      assert.equal(r.outcome, 'timeout');
      assert.deepEqual(r.pending, [{ network: 'net1', node: 'n2' }]);
    } finally {
      await c.stop();
    }
  });
});
