/** The agent config's `dns` section: defaults, bounds, and the upstream parser the wiring uses. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig } from '../../../../src/core/config.js';
import { parseUpstream } from '../../../../src/agent/dns/plan.js';

const base = { nodeName: 'n1', advertiseAddr: '10.0.0.1' };

describe('agent config: dns section', () => {
  test('defaults (workers absent: the agent derives them from the CPU count)', () => {
    const c = parseAgentConfig(base);
    assert.deepEqual(c.dns, { ttlSeconds: 5, resolvConf: '/etc/resolv.conf', forwardTimeoutMs: 3000, maxPendingForwards: 256, maxUdpPayload: 1232, cacheMaxEntries: 10_000, resyncMs: 10_000 });
    assert.equal(c.dns.workers, undefined);
    assert.equal(c.dns.upstreams, undefined);
  });

  test('explicit values are kept', () => {
    const c = parseAgentConfig({ ...base, dns: { ttlSeconds: 0, upstreams: ['10.0.0.53:53', '127.0.0.1:5353'], workers: 3, maxPendingForwards: 10, forwardTimeoutMs: 500 } });
    assert.equal(c.dns.ttlSeconds, 0);
    assert.equal(c.dns.workers, 3);
    assert.deepEqual(c.dns.upstreams, ['10.0.0.53:53', '127.0.0.1:5353']);
    assert.equal(c.dns.maxPendingForwards, 10);
    assert.equal(c.dns.forwardTimeoutMs, 500);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['negative TTL', { ttlSeconds: -1 }, /dns\.ttlSeconds/],
    ['fractional TTL', { ttlSeconds: 1.5 }, /dns\.ttlSeconds/],
    ['zero workers', { workers: 0 }, /dns\.workers/],
    ['too many workers', { workers: 65 }, /dns\.workers/],
    ['upstream without port', { upstreams: ['10.0.0.53'] }, /dns\.upstreams\.0/],
    ['empty upstream list', { upstreams: [] }, /dns\.upstreams/],
    ['forward timeout too short', { forwardTimeoutMs: 10 }, /dns\.forwardTimeoutMs/],
    ['zero pending bound', { maxPendingForwards: 0 }, /dns\.maxPendingForwards/],
    ['UDP payload below 512', { maxUdpPayload: 511 }, /dns\.maxUdpPayload/],
    ['unknown key', { ttl: 5 }, /dns/],
  ];
  for (const [name, dns, re] of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => parseAgentConfig({ ...base, dns }), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_CONFIG' && re.test(e.message));
    });
  }

  test('parseUpstream', () => {
    assert.deepEqual(parseUpstream('10.0.0.53:53'), { address: '10.0.0.53', port: 53 });
    assert.deepEqual(parseUpstream('127.0.0.1:5353'), { address: '127.0.0.1', port: 5353 });
    assert.throws(() => parseUpstream('10.0.0.53'), /IPV4:PORT/);
    assert.throws(() => parseUpstream('10.0.0.53:0'), /IPV4:PORT/);
  });
});
