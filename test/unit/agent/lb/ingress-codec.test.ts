/**
 * Ingress records under the compact-encoding gate (issue 18 §1; src/agent/lb/ingress-records.ts): the node says on
 * `ingress` that it reads compact records, writes its ingress sandbox and attachment records compact only while
 * every node on `ingress` has said so, and rewrites them when that changes. Readers take both; a bad record is
 * counted by the LB, never applied. Sizes before/after are exact rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { IngressRecords } from '../../../../src/agent/lb/ingress-records.js';
import { IngressSide } from '../../../../src/agent/lb/ingress-side.js';
import { LbSubsystem } from '../../../../src/agent/lb/lb.js';
import { INGRESS_NET, sboxRecord } from '../../../../src/agent/lb/plan.js';
import { LbState } from '../../../../src/agent/lb/state.js';
import type { LbSubsystemOptions } from '../../../../src/agent/lb/types.js';
import type { OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../../../../src/adapters/dataplane/memory.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import { COMPACT_VERSION } from '../../../../src/core/endpoint-compact.js';
import {
  decodeEndpoint, encodeEndpoint, ENDPOINT_CODEC_TABLE, ENDPOINT_CODECS, ENDPOINT_TABLE, endpointEncodingOf, INGRESS_NETWORK, type EndpointRecord,
} from '../../../../src/core/endpoints.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-ingcodec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const settle = () => new Promise((r) => setImmediate(r));
const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;

/** What agents write on `ingress`: the node's sandbox, and a task's attachment (its record, moved to `ingress`). */
const sbox = sboxRecord('n1', '10.99.0.1', { ip: '10.255.0.3', mac: macFromIp('10.255.0.3') });
const attachment: EndpointRecord = {
  v: 1, taskId: '5f0c2a9e1b7d4c3a8e6f1029', taskName: 'web.3', serviceId: 'a1b2c3d4e5f60718293a4b5c', serviceName: 'web',
  network: INGRESS_NETWORK, networkName: INGRESS_NET.name, ip: '10.255.0.9', mac: macFromIp('10.255.0.9'), node: 'n1', nodeIp: '10.99.0.1',
  vip: null, endpointMode: 'vip', aliases: [], ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress' }], state: 'running',
};

function rig() {
  const g = new FakeGossip('n1');
  const nodes = ['n1', 'n2'];
  (g.core as { networkNodes: (n: string) => string[] }).networkNodes = (n) => (n === INGRESS_NETWORK ? [...nodes] : []);
  const says = (node: string, net = INGRESS_NETWORK) => {
    const value = new TextEncoder().encode(ENDPOINT_CODECS);
    if (!g.tables.has(net)) g.tables.set(net, new Map());
    g.tables.get(net)!.set(node, { table: ENDPOINT_CODEC_TABLE, value, owner: node });
    g.emit({ type: 'create', network: net, table: ENDPOINT_CODEC_TABLE, key: node, value, owner: node });
  };
  const encoding = (key: string) => {
    const e = g.tables.get(INGRESS_NETWORK)?.get(key);
    assert.ok(e && e.table === ENDPOINT_TABLE, `record ${key} is written`);
    assert.ok(decodeEndpoint(e.value).ok, `record ${key} decodes`);
    return endpointEncodingOf(e.value);
  };
  return { g, nodes, says, encoding };
}

test('ingress side: says on `ingress` that it reads compact; its sandbox record is JSON until every node there has said so, then compact', async () => {
  const { g, nodes, says, encoding } = rig();
  const o = {
    nodeName: 'n1', underlayIp: '10.99.0.1', prefix: 'x-', dataDir: dir, gossip: g, clock: new ManualClock(1_000), log, exec: {} as Exec,
    overlay: { defineNetwork() {}, addLocal() {} } as unknown as OverlaySubsystem,
  } as LbSubsystemOptions;
  const side = new IngressSide(o, new LbState('n1'), (id) => `ns-${id}`, () => undefined);
  side.setNode({ ip: '10.255.0.3', mac: macFromIp('10.255.0.3') });
  const mine = g.tables.get(INGRESS_NETWORK)?.get('n1');
  assert.deepEqual(mine && { table: mine.table, owner: mine.owner, value: new TextDecoder().decode(mine.value) }, { table: ENDPOINT_CODEC_TABLE, owner: 'n1', value: ENDPOINT_CODECS });
  assert.equal(encoding('sbox-n1'), 'json', 'n2 has said nothing (an older agent, or its word has not arrived)');
  says('n2', 'net-other');
  await settle();
  assert.equal(encoding('sbox-n1'), 'json', 'a word on another network does not count for `ingress`');
  says('n2');
  await settle();
  assert.equal(encoding('sbox-n1'), 'compact', 'rewritten once every node on `ingress` reads compact');
  assert.deepEqual(g.record(INGRESS_NETWORK, 'sbox-n1'), sbox);
  nodes.push('n3');
  g.emit({ type: 'network-join', node: 'n3', network: INGRESS_NETWORK });
  await settle();
  assert.equal(encoding('sbox-n1'), 'json', 'an older agent joined the routing mesh: rewritten in JSON so it can read it');
});

test('ingress records: written in the encoding allowed now; a deleted record is not written again when the rule changes', async () => {
  const { g, says, encoding } = rig();
  g.core.joinNetwork(INGRESS_NETWORK, 0);
  const r = new IngressRecords({ nodeName: 'n1', clock: { now: () => 0 }, gossip: g });
  r.say();
  says('n2');
  assert.equal(r.encoding(), 'compact');
  r.set(attachment);
  r.set(sbox);
  assert.equal(encoding(attachment.taskId), 'compact');
  assert.ok(r.wrote(attachment.taskId));
  r.delete(attachment.taskId);
  assert.equal(r.wrote(attachment.taskId), false);
  g.emit({ type: 'network-join', node: 'n3', network: INGRESS_NETWORK });
  (g.core as { networkNodes: (n: string) => string[] }).networkNodes = () => ['n1', 'n2', 'n3'];
  g.emit({ type: 'network-join', node: 'n3', network: INGRESS_NETWORK });
  await settle();
  assert.equal(encoding('sbox-n1'), 'json');
  assert.equal(g.tables.get(INGRESS_NETWORK)?.get(attachment.taskId), undefined, 'the deleted record stays deleted');
});

test('ingress record size, bytes per record before (JSON) and after (compact)', () => {
  const rows: Array<[string, EndpointRecord, number, number]> = [
    // name, record, JSON bytes, compact bytes (exact: a change of encoding shows here)
    ['ingress sandbox', sbox, 308, 69],
    ['ingress sandbox, dual stack', sboxRecord('n1', '10.99.0.1', { ip: '10.255.0.3', mac: macFromIp('10.255.0.3') }, true), 343, 85],
    ['task attachment, 1 published port', attachment, 377, 69],
  ];
  const got = rows.map(([name, r]) => [name, encodeEndpoint(r).length, encodeEndpoint(r, 'compact').length] as const);
  console.log(got.map(([n, j, c]) => `${n}: JSON ${j} B, compact ${c} B (${(j / c).toFixed(1)}×)`).join('\n'));
  assert.deepEqual(got, rows.map(([n, , j, c]) => [n, j, c]));
  for (const [name, r] of rows) assert.deepEqual(decodeEndpoint(encodeEndpoint(r, 'compact')), { ok: true, record: r }, name);
});

test('ingress record fuzz: truncated, bit-flipped and overwritten compact records never throw; what decodes is a valid record', () => {
  let seed = 0x9b;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 255;
  const goods = [sbox, attachment, sboxRecord('n1', 'fd00:99::1', { ip: '10.255.0.3', mac: 'aa:bb:cc:dd:ee:ff' }, true)].map((r) => encodeEndpoint(r, 'compact'));
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const g = goods[i % goods.length]!;
    let b: Uint8Array;
    switch (i % 3) {
      case 0: b = g.subarray(0, 1 + (rnd() % (g.length - 1))); break;
      case 1: { b = Uint8Array.from(g); const at = 1 + (rnd() % (b.length - 1)); b[at] = b[at]! ^ (1 << (rnd() % 8)); break; }
      default: b = Uint8Array.from(g); for (let k = 0; k < 3; k++) b[1 + (rnd() % (b.length - 1))] = rnd(); break;
    }
    const d = decodeEndpoint(b);
    if (d.ok) {
      decoded++;
      assert.deepEqual(decodeEndpoint(encodeEndpoint(d.record, 'compact')), d);
    } else assert.match(d.reason, /^endpoint-(compact|schema)$/);
  }
  assert.ok(decoded > 0 && decoded < 20_000, `some altered records still decode (${decoded})`);
});

test('LB: a peer\'s compact ingress record is applied like its JSON one; a bad compact record is counted, never applied', async () => {
  const g = new FakeGossip('n1');
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.0.1', prefix: 'x-', dataDir: dir, gossip: g, clock: new ManualClock(1_000), log, exec: {} as Exec,
    overlay: { active: true, reconciledOnce: true, programmedVersion: 0, lastErrorMessage: null, programmed: () => new Map(), memberIps: () => [], onProgress: () => undefined } as unknown as OverlaySubsystem,
    dataplane: new MemoryDataplane(), checkMs: 3_600_000,
  });
  const state = (lb as unknown as { state: LbState }).state;
  const bad = async () => ((await lb.status()) as { badRecords: number }).badRecords;
  const peer = { ...attachment, node: 'n2', nodeIp: '10.99.0.2' };
  const compact = encodeEndpoint(peer, 'compact');
  assert.equal(compact[0], COMPACT_VERSION);
  g.set(peer, 'n2', compact);
  assert.deepEqual(state.records(INGRESS_NETWORK), [peer], 'the compact record is applied');
  const truncated = compact.subarray(0, compact.length - 3);
  const other = { ...peer, taskId: 'f0f0f0f0f0f0f0f0f0f0f0f0' };
  g.set(other, 'n2', truncated);
  assert.equal(await bad(), 1, 'a truncated compact record is counted');
  assert.deepEqual(state.records(INGRESS_NETWORK).map((r) => r.taskId), [peer.taskId], 'and never applied');
  g.set(other, 'n2', Uint8Array.of(COMPACT_VERSION, 0xff, 0xff, 0xff, 0xff, 0x7f));
  assert.equal(await bad(), 2, 'unknown flag bits are counted');
  assert.equal(state.records(INGRESS_NETWORK).length, 1);
});
