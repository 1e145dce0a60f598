import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GOSSIP_PRESETS, resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { MeshError } from '../../../src/core/errors.js';

describe('gossip config presets', () => {
  test('lan carries memberlist DefaultLANConfig values', () => {
    const c = GOSSIP_PRESETS.lan;
    assert.deepEqual(
      [c.probeIntervalMs, c.probeTimeoutMs, c.indirectChecks, c.retransmitMult, c.suspicionMult, c.suspicionMaxTimeoutMult,
        c.gossipIntervalMs, c.gossipNodes, c.pushPullIntervalMs, c.awarenessMaxMultiplier, c.tcpTimeoutMs, c.maxPacketBytes],
      [1000, 500, 3, 4, 4, 6, 200, 3, 30_000, 8, 10_000, 1400],
    );
  });
  test('wan carries memberlist DefaultWANConfig deltas', () => {
    const c = GOSSIP_PRESETS.wan;
    assert.deepEqual([c.probeIntervalMs, c.probeTimeoutMs, c.suspicionMult, c.gossipIntervalMs, c.gossipNodes, c.pushPullIntervalMs],
      [5000, 3000, 6, 500, 4, 60_000]);
    assert.equal(c.indirectChecks, GOSSIP_PRESETS.lan.indirectChecks);
  });
  test('local is faster than lan and still valid', () => {
    const c = resolveGossipConfig('local');
    assert.ok(c.probeIntervalMs < GOSSIP_PRESETS.lan.probeIntervalMs);
    assert.ok(c.probeTimeoutMs < c.probeIntervalMs);
  });
  test('every preset validates', () => {
    for (const p of ['lan', 'wan', 'local'] as const) assert.deepEqual(resolveGossipConfig(p), GOSSIP_PRESETS[p]);
  });
  test('overrides apply', () => {
    const c = resolveGossipConfig('lan', { probeIntervalMs: 2000, gossipNodes: 5 });
    assert.equal(c.probeIntervalMs, 2000);
    assert.equal(c.gossipNodes, 5);
    assert.equal(c.probeTimeoutMs, 500);
    assert.ok(Object.isFrozen(c));
  });
  const bad: [string, Record<string, number>][] = [
    ['unknown key', { probeIntervalMS: 1 }],
    ['non-integer', { gossipNodes: 1.5 }],
    ['below range', { maxPacketBytes: 100 }],
    ['above range', { indirectChecks: 99 }],
    ['NaN', { probeIntervalMs: Number.NaN }],
    ['timeout ≥ interval', { probeTimeoutMs: 1000 }],
  ];
  for (const [what, o] of bad) {
    test(`rejects ${what} with MESHD_BAD_CONFIG`, () => {
      assert.throws(() => resolveGossipConfig('lan', o), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_CONFIG');
    });
  }
  test('rejects unknown preset', () => {
    assert.throws(() => resolveGossipConfig('fast' as 'lan'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_CONFIG');
  });
});
