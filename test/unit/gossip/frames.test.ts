/**
 * Push-pull in several frames (issue 18 §4): a state over maxPushPullBytes is split into frames of
 * at most that size and joined strictly; the per-frame limit stays a safety bound, and a state of
 * any size up to maxPushPullFrames × maxPushPullBytes still syncs. Hostile frame sequences (out of
 * order, missing the last, mixed senders, too many, lying lengths inside a frame) are refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode, encodePushPull, decodePushPullFrames, MIN_PUSH_PULL_FRAME, type PushPullState, type TableEntryWire } from '../../../src/core/gossip/wire.js';
import { GossipNode, resolveGossipConfig, type Outgoing } from '../../../src/core/gossip/index.js';

const FRAME = 64 * 1024;

function entries(n: number): TableEntryWire[] {
  return Array.from({ length: n }, (_, i) => ({ network: 'app', table: 'endpoints', key: `task-${i}`, value: new Uint8Array(200).fill(i & 255), ltime: i + 1, owner: 'n2', deleted: i % 17 === 0 }));
}

function big(n = 2000): PushPullState {
  return {
    from: 'n2', join: false,
    members: Array.from({ length: 300 }, (_, i) => ({ name: `node-${i}`, addr: `10.0.${i >> 8}.${i & 255}:7946`, incarnation: i, state: 'alive' as const })),
    networks: Array.from({ length: 600 }, (_, i) => ({ node: `node-${i % 300}`, network: `net-${i}`, ltime: i, leave: false })),
    entries: entries(n),
  };
}

describe('push-pull frames', () => {
  test('a state that fits is one plain push-pull, byte for byte', () => {
    const s = { ...big(10), members: [], networks: [] };
    const f = encodePushPull(s, FRAME);
    assert.equal(f.length, 1);
    assert.deepEqual(f[0], encode({ type: 'push-pull', state: s }));
  });

  test('a larger state is split into bounded frames and joined back to the same state', () => {
    const s = big();
    const f = encodePushPull(s, FRAME);
    assert.ok(f.length > 5, `${f.length} frames`);
    for (const x of f) assert.ok(x.length <= FRAME, `frame of ${x.length} bytes`);
    const d = decodePushPullFrames(f, FRAME, 64);
    assert.ok(d.ok);
    assert.deepEqual(d.ok && d.msg, { type: 'push-pull', state: s });
    assert.ok(MIN_PUSH_PULL_FRAME < FRAME);
  });

  test('hostile frame sequences are refused with a reason', () => {
    const f = encodePushPull(big(), FRAME);
    const reason = (frames: Uint8Array[], max = 64): string => {
      const d = decodePushPullFrames(frames, FRAME, max);
      return d.ok ? 'ok' : d.reason;
    };
    assert.equal(reason([f[1]!, f[0]!, ...f.slice(2)]), 'bad-part', 'out of order');
    assert.equal(reason(f.slice(0, -1)), 'bad-part', 'no last frame');
    assert.equal(reason([...f, f.at(-1)!]), 'bad-part', 'a frame after the last');
    assert.equal(reason([f[0]!]), 'bad-part', 'a lone first part that is not the last');
    assert.equal(reason([f[0]!, encode({ type: 'push-pull', state: big(1) })]), 'bad-part', 'a whole push-pull among parts');
    const other = encodePushPull({ ...big(), from: 'n3' }, FRAME);
    assert.equal(reason([f[0]!, other[1]!, ...f.slice(2)]), 'bad-part', 'two senders');
    assert.equal(reason(f, f.length - 1), 'too-many-frames');
    assert.equal(reason([]), 'empty');
    const oversized = new Uint8Array(FRAME + 1);
    assert.equal(reason([f[0]!, oversized]), 'oversized');
    // lying lengths inside a middle frame: its entry count claims more than it holds
    const liar = f[1]!.slice();
    const dv = new DataView(liar.buffer);
    const at = 2 + 1 + 2 + 1 + 2 + 1; // version, type, from "n2", join, part, last → members count
    dv.setUint32(at, 0x00ff_ffff);
    assert.notEqual(reason([f[0]!, liar, ...f.slice(2)]), 'ok');
    // every truncation of a middle frame is refused
    for (let cut = 1; cut < 200; cut += 7) assert.notEqual(reason([f[0]!, f[1]!.subarray(0, f[1]!.length - cut), ...f.slice(2)]), 'ok');
  });
});

/** Delivers n1 ↔ n2 in memory until quiet. */
function pump(n1: GossipNode, n2: GossipNode, now: number): void {
  const by = new Map([[n1.addr, n1], [n2.addr, n2]]);
  for (let i = 0; i < 100; i++) {
    const out: Array<[GossipNode, Outgoing]> = [];
    for (const n of [n1, n2]) for (const o of n.drain()) out.push([n, o]);
    if (!out.length) return;
    for (const [from, o] of out) {
      const to = by.get(o.to)!;
      if (o.kind === 'udp') to.handlePacket(from.addr, o.bytes, now);
      else from.handleStreamResponse(o.id, to.handleStreamRequest(from.addr, o.frames, now), now);
    }
  }
}

describe('push-pull frames between two nodes', () => {
  const setup = (frames: number): { n1: GossipNode; n2: GossipNode } => {
    const cfg = resolveGossipConfig('lan', { maxPushPullBytes: FRAME, maxPushPullFrames: frames });
    const n1 = new GossipNode({ name: 'n1', addr: '10.0.0.1:7946', config: cfg, rng: () => 0.5, now: 0 });
    const n2 = new GossipNode({ name: 'n2', addr: '10.0.0.2:7946', config: cfg, rng: () => 0.5, now: 0 });
    for (const n of [n1, n2]) n.joinNetwork('app', 0);
    for (let i = 0; i < 3000; i++) n2.tableSet('app', 'endpoints', `task-${i}`, new Uint8Array(200).fill(i & 255), 0);
    n2.drain();
    return { n1, n2 };
  };

  test('a state of many frames syncs with the default frame limit kept per frame', () => {
    const { n1, n2 } = setup(64);
    n1.join([n2.addr], 1);
    pump(n1, n2, 1);
    assert.equal(n1.tableEntries('app', 'endpoints').length, 3000);
    assert.deepEqual(n1.metrics().drops, {});
  });

  test('more frames than maxPushPullFrames: refused and counted, nothing merged', () => {
    const { n1, n2 } = setup(3);
    n1.join([n2.addr], 1);
    pump(n1, n2, 1);
    assert.equal(n1.tableEntries('app', 'endpoints').length, 0);
    assert.equal(n1.metrics().drops['too-many-frames'], 1);
  });
});
