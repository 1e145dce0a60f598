/**
 * Payload bytes by kind (GossipMetrics.bytesOutByKind, issue 18 §3): the kinds add up to what was sent, a
 * probe's ping and ack are told apart from broadcasts riding on them, streams are counted apart from UDP,
 * and a ping no longer carries the prober's address (NO_SOURCE_ADDR, 13 of its 28 bytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_SOURCE_ADDR, decodePacket, encode } from '../../../src/core/gossip/wire.js';
import { cluster } from './helpers.js';

const sum = (r: Record<string, number>, pred: (k: string) => boolean = () => true): number =>
  Object.entries(r).filter(([k]) => pred(k)).reduce((a, [, v]) => a + v, 0);

test('bytesOutByKind adds up to bytesOut + streamBytesOut; probes, streams, broadcasts apart', () => {
  const { sim, names } = cluster(6, 11);
  sim.runFor(12_000);
  for (const n of names) {
    const m = sim.get(n).node.metrics();
    const k = m.bytesOutByKind;
    assert.equal(sum(k, (x) => !x.startsWith('stream:')), m.bytesOut, `${n}: UDP kinds = bytesOut ${JSON.stringify(k)}`);
    assert.equal(sum(k, (x) => x.startsWith('stream:')), m.streamBytesOut, `${n}: stream kinds = streamBytesOut`);
    assert.ok((k['udp:ping'] ?? 0) > 0 && (k['udp:ack'] ?? 0) > 0, `${n}: pings and acks counted: ${JSON.stringify(k)}`);
    assert.ok((k['stream:push-pull'] ?? 0) > 0, `${n}: push-pull counted: ${JSON.stringify(k)}`);
  }
  // a table write is a broadcast: it rides on probes (piggyback) and gossip rounds, counted as such
  for (const n of names) sim.act(n, (g, now) => g.joinNetwork('net', now));
  sim.runFor(3000);
  const before = names.map((n) => ({ ...sim.get(n).node.metrics().bytesOutByKind }));
  sim.act('n1', (g, now) => g.tableSet('net', 't', 'k', new Uint8Array(40), now));
  sim.runFor(3000);
  const grew = (kind: string): number => names.reduce((a, n, i) => a + (sim.get(n).node.metrics().bytesOutByKind[kind] ?? 0) - (before[i]![kind] ?? 0), 0);
  assert.ok(grew('gossip:table') + grew('piggyback:table') > 0, 'the write was sent as a broadcast');
  for (const n of names) assert.ok(sim.get(n).node.tableGet('net', 't', 'k'), `${n} holds the write`);
});

test('pings carry NO_SOURCE_ADDR: every v1 reader still decodes them, and they are 13 bytes shorter', () => {
  const full = encode({ type: 'ping', seq: 1, target: 'n12', source: 'n3', sourceAddr: '10.99.1.3:7946' });
  const short = encode({ type: 'ping', seq: 1, target: 'n12', source: 'n3', sourceAddr: NO_SOURCE_ADDR });
  assert.equal(full.length - short.length, 13);
  const d = decodePacket(short);
  assert.ok(d.ok && d.msg.type === 'ping' && d.msg.sourceAddr === NO_SOURCE_ADDR);
  // what the engine sends
  const { sim, names } = cluster(4, 12);
  const g = sim.get(names[0]!).node;
  const m0 = g.metrics();
  sim.runFor(2000);
  const m1 = g.metrics();
  const pings = m1.probes - m0.probes;
  assert.ok(pings > 0);
  const perPing = ((m1.bytesOutByKind['udp:ping'] ?? 0) - (m0.bytesOutByKind['udp:ping'] ?? 0)) / pings;
  assert.ok(perPing <= 2 + 4 + 1 + 3 + 1 + 3 + 1 + NO_SOURCE_ADDR.length, `a ping is ${perPing} bytes`);
});
