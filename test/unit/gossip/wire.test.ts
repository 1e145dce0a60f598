import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePacket, decodeStream, encode, encodeCompound, LIMITS, MAX_INCARNATION, WIRE_VERSION, type Msg, type PushPullState,
} from '../../../src/core/gossip/wire.js';
import { seededRng } from '../../../src/core/clock.js';
import { GOSSIP_PRESETS } from '../../../src/core/gossip/config.js';
import { GossipNode } from '../../../src/core/gossip/index.js';

const state: PushPullState = {
  from: 'a', join: true,
  members: [
    { name: 'a', addr: '10.0.0.1:7946', incarnation: 3, state: 'alive' },
    { name: 'b', addr: '10.0.0.2:7946', incarnation: MAX_INCARNATION, state: 'left' },
    { name: 'ü-node', addr: '[fe80::1]:7946', incarnation: 0, state: 'suspect' },
  ],
  networks: [{ node: 'a', network: 'app', ltime: 7, leave: false }, { node: 'b', network: 'app', ltime: 9, leave: true }],
  entries: [
    { network: 'app', table: 'endpoints', key: 'k'.repeat(LIMITS.key), value: new Uint8Array(LIMITS.value).fill(7), ltime: 0xffffffff, owner: 'a', deleted: false },
    { network: 'app', table: 'endpoints', key: 'gone', value: new Uint8Array(0), ltime: 4, owner: 'b', deleted: true },
  ],
};

const packets: Msg[] = [
  { type: 'ping', seq: 0xffffffff, target: 'b', source: 'a', sourceAddr: '10.0.0.1:7946' },
  { type: 'indirect-ping', seq: 1, target: 'c', targetAddr: '10.0.0.3:7946', source: 'a', sourceAddr: '10.0.0.1:7946', nack: true },
  { type: 'ack', seq: 5 },
  { type: 'nack', seq: 6 },
  { type: 'suspect', incarnation: MAX_INCARNATION, node: 'n'.repeat(64), from: 'a' },
  { type: 'alive', incarnation: 0, node: 'b', addr: '10.0.0.2:7946' },
  { type: 'dead', incarnation: 2, node: 'b', from: 'b', left: true },
  { type: 'table', network: 'app', table: 't', key: 'x', value: new Uint8Array([1, 2, 3]), ltime: 12, owner: 'a', deleted: false },
  { type: 'network', node: 'a', network: 'app', ltime: 3, leave: true },
];

describe('wire codec', () => {
  for (const m of packets) {
    test(`round-trips ${m.type}`, () => {
      const d = decodePacket(encode(m));
      assert.ok(d.ok, JSON.stringify(d));
      assert.deepEqual(d.msg, m);
    });
  }
  test('round-trips compound packets of up to 64 parts', () => {
    const parts = Array.from({ length: 64 }, (_, i) => encode({ type: 'ack', seq: i }));
    const d = decodePacket(encodeCompound(parts));
    assert.ok(d.ok && d.msg.type === 'compound');
    assert.equal(d.msg.type === 'compound' && d.msg.parts.length, 64);
    assert.throws(() => encodeCompound([...parts, parts[0]!]), RangeError);
  });
  test('round-trips push-pull state (stream only)', () => {
    const bytes = encode({ type: 'push-pull', state });
    const d = decodeStream(bytes, 1 << 20);
    assert.ok(d.ok, JSON.stringify(d));
    assert.deepEqual(d.msg, { type: 'push-pull', state });
    assert.deepEqual(decodePacket(bytes), { ok: false, reason: 'bad-type' });
    assert.deepEqual(decodeStream(bytes, bytes.length - 1), { ok: false, reason: 'oversized' });
  });
  test('reason codes', () => {
    const ping = encode(packets[0]!);
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'empty'],
      [Uint8Array.of(WIRE_VERSION + 1, 3, 0, 0, 0, 1), 'bad-version'],
      [Uint8Array.of(WIRE_VERSION), 'truncated'],
      [ping.subarray(0, ping.length - 1), 'truncated'],
      [Uint8Array.of(WIRE_VERSION, 99), 'bad-type'],
      [Uint8Array.of(WIRE_VERSION, 3, 0, 0, 0, 1, 0), 'trailing'],
      [Uint8Array.of(WIRE_VERSION, 5, 0, 0, 0, 1, 65, ...new Uint8Array(65)), 'length'], // name of 65 bytes
      [Uint8Array.of(WIRE_VERSION, 5, 0, 0, 0, 1, 0, 1, 97), 'length'], // empty name
      [Uint8Array.of(WIRE_VERSION, 6, 0xff, 0xff, 0xff, 0xff, 1, 97, 1, 98), 'bad-incarnation'],
      [Uint8Array.of(WIRE_VERSION, 5, 0, 0, 0, 1, 1, 0xff, 1, 97), 'bad-string'],
      [Uint8Array.of(WIRE_VERSION, 4 + 4, 0), 'length'], // compound of zero parts
      [Uint8Array.of(WIRE_VERSION, 8, 1, 0, 3, WIRE_VERSION, 8), 'truncated'],
      [new Uint8Array(LIMITS.udpBytes + 1).fill(WIRE_VERSION), 'oversized'],
      [Uint8Array.of(WIRE_VERSION, 7, 0, 0, 0, 1, 1, 97, 1, 97, 2), 'bad-flag'],
    ];
    for (const [b, reason] of cases) assert.deepEqual(decodePacket(b), { ok: false, reason }, `${Buffer.from(b.subarray(0, 16)).toString('hex')}`);
    const nested = encodeCompound([encodeCompound([encode({ type: 'ack', seq: 1 })])]);
    const d = decodePacket(nested);
    assert.ok(d.ok && d.msg.type === 'compound');
    if (d.ok && d.msg.type === 'compound') assert.deepEqual(decodePacket(d.msg.parts[0]!, false), { ok: false, reason: 'nested-compound' });
  });
  test('push-pull with a lying record count is refused without allocating', () => {
    const b = encode({ type: 'push-pull', state: { ...state, members: [], networks: [], entries: [] } });
    const lying = b.slice();
    // members count sits after [ver][type][len 'a'][a][join]
    new DataView(lying.buffer).setUint32(5, 0x7fffffff);
    assert.deepEqual(decodeStream(lying, 1 << 20), { ok: false, reason: 'length' });
  });
  test('encoding refuses over-long fields (local bug, not peer input)', () => {
    assert.throws(() => encode({ type: 'alive', incarnation: 1, node: 'x'.repeat(65), addr: 'a' }), RangeError);
    assert.throws(() => encode({ type: 'table', network: 'n', table: 't', key: 'k', value: new Uint8Array(LIMITS.value + 1), ltime: 1, owner: 'o', deleted: false }), RangeError);
  });
});

/** Builds a malformed/ hostile packet of one of the fuzz classes from a valid template. */
function fuzzPacket(rng: () => number, i: number): Uint8Array {
  const tpl = encodeCompound([encode(packets[i % packets.length]!), encode({ type: 'ack', seq: i })]);
  const single = encode(packets[i % packets.length]!);
  const rnd = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
  switch (i % 8) {
    case 0: return new Uint8Array(0);
    case 1: return rnd(1 + Math.floor(rng() * 200));
    case 2: return (rng() < 0.5 ? tpl : single).slice(0, Math.floor(rng() * (single.length - 1)));
    case 3: {
      const b = tpl.slice();
      for (let k = 0; k < 1 + Math.floor(rng() * 4); k++) { const j = Math.floor(rng() * b.length); b[j] = b[j]! ^ (1 << Math.floor(rng() * 8)); }
      return b;
    }
    case 4: {
      const b = single.slice();
      b[0] = (WIRE_VERSION + 1 + Math.floor(rng() * 254)) & 0xff || 2;
      return b;
    }
    case 5: {
      const b = tpl.slice();
      new DataView(b.buffer).setUint16(3, 0xffff); // compound part length lies
      return b;
    }
    case 6: return new Uint8Array(LIMITS.udpBytes + 1 + Math.floor(rng() * 1000));
    default: {
      const m = rng() < 0.5
        ? encode({ type: 'alive', incarnation: 0, node: 'peer', addr: 'x:1' })
        : encode({ type: 'suspect', incarnation: 0, node: 'peer', from: 'x' });
      new DataView(m.buffer).setUint32(2, 0xffffffff); // maximum incarnation: reserved
      return m;
    }
  }
}

describe('fuzz: 10^4 hostile packets into a live node', () => {
  test('never throws, every malformed packet is counted, membership unchanged', () => {
    const now = 1000;
    const node = new GossipNode({ name: 'me', addr: '10.0.0.1:7946', config: GOSSIP_PRESETS.lan, rng: seededRng(1), now });
    node.bootstrap([{ name: 'peer', addr: '10.0.0.2:7946', incarnation: 5 }], now);
    const before = JSON.stringify(node.members());
    const rng = seededRng(99);
    let malformed = 0;
    let valid = 0;
    for (let i = 0; i < 10_000; i++) {
      const b = fuzzPacket(rng, i);
      const d = decodePacket(b);
      if (d.ok) {
        // A flipped byte can still yield a well-formed message (that is what the AES-GCM tag is for);
        // those go to a scratch node so the membership check stays about malformed input.
        valid++;
        continue;
      }
      malformed++;
      node.handlePacket('10.9.9.9:1', b, now + i);
      assert.doesNotThrow(() => decodeStream(b, 1 << 20));
      assert.doesNotThrow(() => node.handleStreamRequest('10.9.9.9:1', b, now + i));
    }
    const m = node.metrics();
    const drops = Object.values(m.drops).reduce((a, b) => a + b, 0);
    assert.ok(malformed >= 9000, `malformed ${malformed}`);
    assert.equal(drops, 2 * malformed, JSON.stringify(m.drops));
    for (const r of ['empty', 'truncated', 'bad-version', 'oversized', 'bad-incarnation']) assert.ok((m.drops[r] ?? 0) > 0, r);
    assert.equal(m.drops.malformed ?? 0, 0);
    assert.equal(JSON.stringify(node.members()), before);
    // well-formed survivors of the byte flips must not crash a node either
    const scratch = new GossipNode({ name: 'scratch', addr: '10.0.0.9:7946', config: GOSSIP_PRESETS.lan, rng: seededRng(2), now });
    const rng2 = seededRng(99);
    let survivors = 0;
    for (let i = 0; i < 10_000; i++) {
      const b = fuzzPacket(rng2, i);
      if (!decodePacket(b).ok) continue;
      // Only byte flips (case 3) can leave a packet well-formed; every other family is malformed by construction.
      assert.equal(i % 8, 3, `packet ${i} decoded`);
      survivors++;
      assert.doesNotThrow(() => scratch.handlePacket('10.9.9.9:1', b, now + i));
    }
    assert.equal(valid + malformed, 10_000, 'every packet is either malformed or well-formed');
    // Same seed, same packets: the scratch node saw exactly the survivors, and there were some, so this half tests something.
    assert.equal(survivors, valid);
    assert.ok(valid > 0 && valid <= 1250, `well-formed survivors of the byte flips: ${valid} (at most the 1250 flipped packets)`);
  });
});
