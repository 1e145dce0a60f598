/**
 * CodecRegate (src/agent/gossip/codecs.ts), the one re-gate of endpoint records shared by the worker's task
 * records and the LB's ingress records: gate events are coalesced per network until a microtask after their
 * dispatch, each named network is re-gated once with the encoding allowed there now, the gossip is pumped once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { CodecRegate } from '../../../../src/agent/gossip/codecs.js';
import { ENDPOINT_CODEC_TABLE, ENDPOINT_CODECS, ENDPOINT_TABLE, type EndpointEncoding } from '../../../../src/core/endpoints.js';

const settle = () => new Promise((r) => setImmediate(r));

function rig(o: { watches?: (network: string) => boolean; holds?: () => boolean } = {}) {
  const g = new FakeGossip('n1');
  const members = new Map([['neta', ['n1', 'n2']], ['netb', ['n1', 'n2']]]);
  (g.core as { networkNodes: (n: string) => string[] }).networkNodes = (n) => [...(members.get(n) ?? [])];
  g.core.joinNetwork('neta', 0);
  g.core.joinNetwork('netb', 0);
  let pumps = 0;
  g.pump = () => void pumps++;
  /** Every rewrite call, in order: [network, encoding it was told]. */
  const calls: Array<[string, EndpointEncoding]> = [];
  /** What the writer holds, by network: the encoding its records are in. */
  const held = new Map<string, EndpointEncoding>([['neta', 'json'], ['netb', 'json']]);
  const regate = new CodecRegate({
    self: 'n1', gossip: g, ...o.watches ? { watches: o.watches } : {}, holds: o.holds ?? (() => true),
    rewrite: (network, e) => {
      calls.push([network, e]);
      if (held.get(network) === e) return false;
      held.set(network, e);
      return true;
    },
  });
  g.onEvent((ev) => regate.onGossip(ev));
  const says = (node: string, net: string) => {
    const value = new TextEncoder().encode(ENDPOINT_CODECS);
    if (!g.tables.has(net)) g.tables.set(net, new Map());
    g.tables.get(net)!.set(node, { table: ENDPOINT_CODEC_TABLE, value, owner: node });
    g.emit({ type: 'create', network: net, table: ENDPOINT_CODEC_TABLE, key: node, value, owner: node });
  };
  return { g, members, calls, held, says, pumps: () => pumps };
}

test('codec regate: several events in one tick make one rewrite per network, then one pump', async () => {
  const { g, calls, held, says, pumps } = rig();
  says('n1', 'neta');
  says('n2', 'neta');
  g.emit({ type: 'network-join', node: 'n2', network: 'neta' });
  says('n1', 'netb');
  g.emit({ type: 'update', network: 'neta', table: ENDPOINT_CODEC_TABLE, key: 'n2', value: new Uint8Array(), owner: 'n2' });
  assert.deepEqual(calls, [], 'nothing rewritten from inside the gossip listener');
  await settle();
  assert.deepEqual(calls, [['neta', 'compact'], ['netb', 'json']], 'each network named once, with the encoding allowed there now');
  assert.equal(held.get('neta'), 'compact');
  assert.equal(pumps(), 1, 'one pump for the whole batch');
  await settle();
  assert.deepEqual(calls.length, 2, 'no second pass without a new event');
});

test('codec regate: one network\'s gate flip rewrites only that network', async () => {
  const { g, members, calls, held, says, pumps } = rig();
  for (const n of ['n1', 'n2']) for (const net of ['neta', 'netb']) says(n, net);
  await settle();
  assert.deepEqual(Object.fromEntries(held), { neta: 'compact', netb: 'compact' });
  calls.length = 0;
  members.get('netb')!.push('n3'); // an older agent (it says nothing) joins netb
  g.emit({ type: 'network-join', node: 'n3', network: 'netb' });
  await settle();
  assert.deepEqual(calls, [['netb', 'json']], 'neta is not looked at');
  assert.deepEqual(Object.fromEntries(held), { neta: 'compact', netb: 'json' });
  assert.equal(pumps(), 2);
  g.emit({ type: 'network-leave', node: 'n3', network: 'netb' });
  members.get('netb')!.pop();
  await settle();
  assert.deepEqual(calls.at(-1), ['netb', 'compact'], 'it left: compact again');
});

test('codec regate: other tables, other networks, networks left and an empty writer are ignored; a rewrite that writes nothing does not pump', async () => {
  let holds = false;
  const { g, calls, says, pumps } = rig({ watches: (n) => n !== 'netc', holds: () => holds });
  says('n2', 'neta');
  await settle();
  assert.deepEqual(calls, [], 'the writer holds nothing: ignored');
  holds = true;
  g.emit({ type: 'create', network: 'neta', table: ENDPOINT_TABLE, key: 't1', value: new Uint8Array(), owner: 'n2' });
  g.emit({ type: 'member-dead', name: 'n2', addr: '', incarnation: 1 });
  g.emit({ type: 'network-join', node: 'n2', network: 'netc' });
  await settle();
  assert.deepEqual(calls, [], 'an endpoint record, a member event and an unwatched network do not re-gate');
  g.core.leaveNetwork('netb', 0);
  g.emit({ type: 'network-leave', node: 'n1', network: 'netb' });
  g.emit({ type: 'network-join', node: 'n2', network: 'neta' });
  await settle();
  assert.deepEqual(calls, [['neta', 'json']], 'netb: this node left it; neta: n1 has not said it reads compact');
  assert.equal(pumps(), 0, 'the records were already JSON: nothing written, no pump');
});
