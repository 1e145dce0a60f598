/**
 * Convergence receipts, agent shell (src/agent/drain/convergence.ts) on three in-memory nodes
 * sharing the fake gossip bus, simulated time (ManualClock; the wall clock is the same counter):
 * each node acks a new endpoint once ITS LB and DNS hold it; every node's collector sees the change
 * complete with three node times, once, into the histogram; a dead member is not waited for; a VIP
 * change is acked again; one ack entry per node × service; collected acks expire locally; the route validates its query.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ManualClock } from '../../../../src/core/clock.js';
import { CONVERGENCE_ACK_TABLE, decodeSnapshot, taskHash } from '../../../../src/core/convergence/index.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import { ConvergenceReceipts } from '../../../../src/agent/drain/convergence.js';
import { FakeGossipBus as Bus } from '../../../helpers/fake-gossip.js';

const log = pino({ level: 'silent' });
const rec = (taskId: string, vip = '10.30.0.2', state: EndpointRecord['state'] = 'running'): EndpointRecord => ({
  v: 1, taskId, taskName: 'web.1', serviceId: 's1', serviceName: 'web', network: 'net1', networkName: 'app', ip: '10.30.0.5', mac: '02:42:0a:1e:00:05',
  node: 'n1', nodeIp: '10.99.1.1', vip, endpointMode: 'vip', aliases: [], ports: [], state,
});

const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
};

function cluster(ttlMs = 60_000) {
  const clock = new ManualClock();
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  const bus = new Bus();
  /** Per node: does its LB hold the record (the DNS answers from whatever the tables hold)? */
  const lb = new Map<string, boolean>();
  const nodes = ['n1', 'n2', 'n3'].map((name) => {
    const g = bus.node(name);
    lb.set(name, true);
    return new ConvergenceReceipts({ nodeName: name, gossip: g, clock, log, wall: () => 1_000_000 + clock.now(), lbPrograms: () => lb.get(name)!, recheckMs: 20, ttlMs, minWriteMs: 0 });
  });
  bus.join('net1', 'n1', 'n2', 'n3');
  const n1 = bus.nodes.get('n1')!;
  const publish = (r: EndpointRecord) => {
    n1.core.tableSet('net1', ENDPOINT_TABLE, r.taskId, encodeEndpoint(r), 0);
    n1.pump();
  };
  /** Every change acked in the table, as `${task}/${node}` (decoded from the per-service snapshots). */
  const acks = () => [...(bus.data.get('net1') ?? [])].filter(([k]) => k.startsWith(`${CONVERGENCE_ACK_TABLE}\0`))
    .flatMap(([, e]) => decodeSnapshot(e.value)!.items.map((i) => `${['T1', 'T2'].find((t) => taskHash(t) === i.task)}/${e.owner}`)).sort();
  /** The ack table's keys: one per node × service. */
  const keys = () => [...(bus.data.get('net1') ?? [])].filter(([k]) => k.startsWith(`${CONVERGENCE_ACK_TABLE}\0`)).map(([k]) => k.split('\0')[1]).sort();
  return { clock, step, bus, lb, nodes, publish, acks, keys, start: async () => { for (const n of nodes) await n.start(); }, stop: async () => { for (const n of nodes) await n.stop(); } };
}

describe('ConvergenceReceipts on three nodes', () => {
  test('acked per node once its LB holds the endpoint; complete once, with three node times', async () => {
    const c = cluster();
    await c.start();
    try {
      c.lb.set('n3', false);
      c.publish(rec('T1'));
      await c.step(0);
      assert.deepEqual(c.acks(), ['T1/n1', 'T1/n2']);
      const v0 = c.nodes[0]!.view();
      assert.equal(v0.changes.length, 1);
      assert.deepEqual(v0.changes[0]!.pending, ['n3']);
      assert.equal(c.nodes[2]!.view().acker.outstanding.length, 1);
      await c.step(30);
      c.lb.set('n3', true); // its LB applied: the recheck (20 ms) acks
      await c.step(20);
      assert.deepEqual(c.acks(), ['T1/n1', 'T1/n2', 'T1/n3']);
      for (const n of c.nodes) {
        const ch = n.view({ service: 'web' }).changes;
        assert.equal(ch.length, 1);
        assert.equal(ch[0]!.complete, true);
        assert.deepEqual(ch[0]!.acks.map((a) => a.node), ['n1', 'n2', 'n3']);
        assert.equal(ch[0]!.slowest, 'n3');
        assert.equal(ch[0]!.totalMs, 40, 'the recheck at 40 ms found the LB applied');
        assert.equal(n.histogram.count, 1);
      }
      assert.equal(c.nodes[0]!.view({ service: 'other' }).changes.length, 0);
      assert.equal(c.nodes[0]!.view({ since: 1_000_001 }).changes.length, 0, 'since filters by publication');
      // A VIP change is a new version: acked again by everyone, a second completion.
      c.publish(rec('T1', '10.30.0.3'));
      await c.step(0);
      assert.equal(c.nodes[1]!.histogram.count, 2);
      assert.equal(c.nodes[1]!.view().changes[0]!.rev !== c.nodes[1]!.view().changes[1]!.rev, true);
    } finally {
      await c.stop();
    }
  });

  test('a dead member is not waited for; deletion leaves the next snapshot (one entry per node × service); collected acks expire locally', async () => {
    const c = cluster(1000);
    await c.start();
    try {
      c.lb.set('n3', false);
      c.publish(rec('T1'));
      await c.step(0);
      assert.equal(c.nodes[0]!.histogram.count, 0);
      c.bus.kill('n3');
      await c.step(0);
      assert.equal(c.nodes[0]!.histogram.count, 1, 'complete without the dead node');
      c.publish(rec('T2'));
      await c.step(0);
      assert.deepEqual(c.acks(), ['T1/n1', 'T1/n2', 'T2/n1', 'T2/n2']);
      assert.deepEqual(c.keys(), ['svc:s1:0/n1', 'svc:s1:0/n2'], 'two changes, one entry per node');
      c.bus.nodes.get('n1')!.core.tableDelete('net1', ENDPOINT_TABLE, 'T2', 0);
      c.bus.pumpAll();
      await c.step(0);
      assert.deepEqual(c.acks(), ['T1/n1', 'T1/n2'], 'T2 left the next snapshot (no delete per task)');
      assert.equal(c.nodes[0]!.view().indexed, 4, 'collected acks are kept until they expire');
      c.bus.nodes.get('n1')!.core.tableDelete('net1', ENDPOINT_TABLE, 'T1', 0);
      c.bus.pumpAll();
      await c.step(0);
      assert.deepEqual(c.keys(), [], 'the service has no record left: its entry is deleted once');
      await c.step(1000);
      assert.equal(c.nodes[0]!.view().indexed, 0, 'expired ttlMs after their last mention');
      assert.equal(c.nodes[0]!.view().changes.length, 2, 'completed changes stay in the history');
    } finally {
      await c.stop();
    }
  });

  test('starting and draining records get no convergence ack', async () => {
    const c = cluster();
    await c.start();
    try {
      c.publish(rec('T1', '10.30.0.2', 'starting'));
      await c.step(0);
      assert.deepEqual(c.acks(), []);
      c.publish(rec('T1', '10.30.0.2', 'running'));
      await c.step(0);
      assert.equal(c.acks().length, 3);
      c.publish(rec('T1', '10.30.0.2', 'draining'));
      await c.step(0);
      assert.deepEqual(c.acks(), [], 'a draining record leaves the snapshot (the drain acks take over)');
    } finally {
      await c.stop();
    }
  });

  test('GET /v1/convergence validates its query', async () => {
    const c = cluster();
    const routes = new Map<string, (r: { query: URLSearchParams }) => unknown>();
    c.nodes[0]!.routes({ add: (_m: string, p: string, h: (r: { query: URLSearchParams }) => unknown) => routes.set(p, h) } as never);
    const h = routes.get('/v1/convergence')!;
    for (const bad of ['since=-1', 'since=abc', 'limit=99999', 'service=../x', 'since=1e3']) {
      assert.throws(() => h({ query: new URLSearchParams(bad) }), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_ARGUMENT', bad);
    }
    const ok = h({ query: new URLSearchParams('service=web&since=0&limit=5') }) as { json: { node: string } };
    assert.equal(ok.json.node, 'n1');
  });
});
