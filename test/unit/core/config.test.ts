import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig } from '../../../src/core/config.js';
import { MeshError } from '../../../src/core/errors.js';
import { ManualClock, seededRng } from '../../../src/core/clock.js';

test('defaults are applied and documented values kept', () => {
  const c = parseAgentConfig({ nodeName: 'n1', advertiseAddr: '10.0.0.1' });
  assert.equal(c.controlSocket, '/run/meshd/meshd.sock');
  assert.equal(c.gossip.preset, 'lan');
  assert.equal(c.gossip.bindPort, 7946);
  assert.deepEqual(c.gossip.seeds, []);
  assert.equal(c.lb.dataplane, 'auto');
  assert.equal(c.drain.ackTimeoutMs, 10_000);
});

const bad: Array<[string, unknown, RegExp]> = [
  ['missing name', { advertiseAddr: '10.0.0.1' }, /nodeName/],
  ['bad name', { nodeName: 'N_1', advertiseAddr: '10.0.0.1' }, /nodeName/],
  ['bad addr', { nodeName: 'n1', advertiseAddr: '300.1.1.1' }, /advertiseAddr/],
  ['bad seed', { nodeName: 'n1', advertiseAddr: '10.0.0.1', gossip: { seeds: ['x:1'] } }, /gossip.seeds.0/],
  ['bad port', { nodeName: 'n1', advertiseAddr: '10.0.0.1', gossip: { bindPort: 70000 } }, /bindPort/],
  ['bad preset', { nodeName: 'n1', advertiseAddr: '10.0.0.1', gossip: { preset: 'fast' } }, /preset/],
  ['unknown key', { nodeName: 'n1', advertiseAddr: '10.0.0.1', bogus: 1 }, /Unrecognized key/],
  ['not an object', 42, /root/],
  ['bad dataplane', { nodeName: 'n1', advertiseAddr: '10.0.0.1', lb: { dataplane: 'iptables' } }, /lb.dataplane/],
  ['negative drain timeout', { nodeName: 'n1', advertiseAddr: '10.0.0.1', drain: { ackTimeoutMs: -1 } }, /drain.ackTimeoutMs/],
];
for (const [name, raw, re] of bad) {
  test(`config rejects: ${name}`, () => {
    assert.throws(() => parseAgentConfig(raw), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_CONFIG' && re.test(e.message));
  });
}

test('manual clock only moves forward; seeded rng is deterministic', () => {
  const c = new ManualClock(5);
  assert.equal(c.advance(10), 15);
  assert.throws(() => c.advance(-1));
  const a = seededRng(42);
  const b = seededRng(42);
  for (let i = 0; i < 100; i++) assert.equal(a(), b());
});
