/**
 * The LB subsystem deletes the conntrack entries of removed backends after the apply that removed
 * them (memory dataplane, recorded flusher, fake gossip and overlay): a remote backend whose
 * record goes (its node died) is flushed in the local task's namespace; a drain is not flushed
 * until the record goes; a failed flush does not fail the apply and is retried with the
 * namespace's next sync. Simulated time (ManualClock).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LbSubsystem } from '../../../../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../../../../src/adapters/dataplane/memory.js';
import { MemoryConntrack } from '../../../../src/adapters/dataplane/conntrack.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import { endpointKey, locationKey } from '../../../../src/core/lb/overlay-gate.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { StaleFlush } from '../../../../src/agent/lb/ct-flush.js';
import type { StaleTarget } from '../../../../src/core/lb/ct-flush.js';
import type { LbDesired } from '../../../../src/core/lb/model.js';
import { stepUntil } from '../../../helpers/until.js';
import { FakeLbOverlay } from '../../../helpers/fake-lb-overlay.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-lbct-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAC = (last: number) => `02:42:0a:1e:00:${last.toString(16).padStart(2, '0')}`;
function rec(taskId: string, last: number, over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    v: 1, taskId, taskName: `dns.${taskId}`, serviceId: 'svcdns', serviceName: 'dns', network: 'app', networkName: 'app',
    ip: `10.30.0.${last}`, mac: MAC(last), node: 'n2', nodeIp: '10.99.1.2', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'udp', target: 53 }], state: 'running', ...over,
  };
}

function setup() {
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const gossip = {
    core: { networks: () => [], tableEntries: () => [] },
    onEvent: (l: (ev: GossipEvent) => void) => listeners.push(l),
    pump: () => undefined,
  } as unknown as GossipPort;
  const overlay = new FakeLbOverlay();
  const dp = new MemoryDataplane();
  const ct = new MemoryConntrack();
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, child: () => log } as unknown as Logger;
  const clock = new ManualClock(1_000);
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'x-', dataDir: dir, gossip, overlay: overlay as unknown as OverlaySubsystem,
    clock, log, exec: {} as Exec, dataplane: dp, conntrack: ct, taskNetns: (id) => `ns-${id}`, checkMs: 3_600_000,
  });
  const put = (r: EndpointRecord) => { if (r.node !== 'n1') overlay.program(r); for (const l of listeners) l({ type: 'update', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: encodeEndpoint(r), owner: r.node } as unknown as GossipEvent); };
  const del = (r: EndpointRecord) => { for (const l of listeners) l({ type: 'delete', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: new Uint8Array(), owner: r.node } as unknown as GossipEvent); };
  const targets = async () => (await dp.readKernel({ netns: 'ns-client1' })).frontends.flatMap((f) => f.targets.map((t) => t.ip)).sort();
  const until = async (what: string, fn: () => Promise<boolean> | boolean): Promise<void> => void (await stepUntil(clock, what, fn, { maxMs: 5_000 }));
  return { lb, ct, dp, put, del, targets, until };
}

const client = rec('client1', 50, { node: 'n1', nodeIp: '10.99.1.1', serviceId: 'svccl', serviceName: 'cl', vip: null, endpointMode: 'dnsrr' });

describe('LB: conntrack entries of removed backends', () => {
  test('a dead node\'s backend is flushed in the client\'s namespace after the apply; a drain only when it ends', async () => {
    const { lb, ct, put, del, targets, until } = setup();
    await lb.start();
    const a = rec('a1', 11);
    const b = rec('b1', 12, { node: 'n3', nodeIp: '10.99.1.3' });
    put(client);
    put(a);
    put(b);
    await until('both backends applied', async () => (await targets()).join() === '10.30.0.11,10.30.0.12');
    assert.equal(ct.calls.length, 0, 'nothing removed yet');

    // n3 dies: its record is deleted without a drain.
    del(b);
    await until('b removed', async () => (await targets()).join() === '10.30.0.11');
    await until('flushed', () => ct.calls.length === 1);
    assert.deepEqual(ct.calls[0], { netns: 'ns-client1', stale: [{ family: 'ipv4', proto: 'udp', vip: '10.30.0.2', port: 53, ip: '10.30.0.12', targetPort: 53 }] });

    // a drains: no new connections, established flows keep going — no flush.
    put({ ...a, state: 'draining' });
    await until('a out of the slots', async () => (await targets()).join() === '');
    assert.equal(lb.drained('app', 'a1'), true);
    assert.equal(ct.calls.length, 1, 'a drain is not flushed');
    // The drain ended (task stopped, record deleted): flushed now.
    del(a);
    await until('a flushed once its record goes', () => ct.calls.length === 2);
    assert.equal(ct.calls[1]!.stale[0]!.ip, '10.30.0.11');
    assert.equal(lb.ctFlush.stats.failures, 0);
    await lb.stop();
  });

  // Both cases start alike: b's record goes (declared dead, maybe only partitioned) and its flush fails.
  const afterFailedFlush: Array<{ name: string; then: (t: ReturnType<typeof setup>, b: EndpointRecord, c: EndpointRecord) => Promise<void> }> = [
    {
      name: 'a failed flush does not fail the apply; retried with the namespace\'s next sync',
      then: async ({ lb, ct, del, until }, _b, c) => {
        del(c);
        await until('retried with the next sync, in one call', () => ct.calls.length === 1);
        assert.deepEqual(ct.calls[0]!.stale.map((s) => s.ip), ['10.30.0.12', '10.30.0.13']);
        assert.equal(lb.ctFlush.failedNamespaces, 0);
        // The client task goes: its namespace is forgotten, nothing pending there.
        del(client);
        await until('namespace forgotten', () => lb.dp.syncedNamespaces() === 0);
        assert.equal(lb.ctFlush.failedNamespaces, 0);
      },
    },
    {
      name: 'a pending flush is not retried for a backend that came back meanwhile (its flows are live again)',
      then: async ({ lb, ct, put, del, targets, until }, b, c) => {
        put(b); // it is back
        await until('b back', async () => (await targets()).join() === '10.30.0.11,10.30.0.12,10.30.0.13');
        assert.equal(lb.ctFlush.failedNamespaces, 0, 'the sync that brought b back dropped it from the retry');
        assert.equal(ct.calls.length, 0, 'nothing flushed for b');
        del(c);
        await until('c flushed', () => ct.calls.length === 1);
        assert.deepEqual(ct.calls[0]!.stale.map((s) => s.ip), ['10.30.0.13']);
      },
    },
  ];
  for (const { name, then } of afterFailedFlush) {
    test(name, async () => {
      const t = setup();
      const { lb, ct, put, del, targets, until } = t;
      await lb.start();
      const a = rec('a1', 11);
      const b = rec('b1', 12);
      const c = rec('c1', 13);
      put(client);
      put(a);
      put(b);
      put(c);
      await until('applied', async () => (await targets()).join() === '10.30.0.11,10.30.0.12,10.30.0.13');
      ct.failNext(1);
      del(b);
      await until('b removed, flush failed', async () => (await targets()).join() === '10.30.0.11,10.30.0.13' && lb.ctFlush.stats.failures === 1);
      assert.equal(lb.stats().failures, 0, 'the apply itself succeeded');
      assert.equal(lb.ctFlush.failedNamespaces, 1);
      await then(t, b, c);
      await lb.stop();
    });
  }

  test('StaleFlush: runs off the apply path, one at a time, a gap between runs; removals meanwhile merge per namespace', async () => {
    const calls: Array<{ netns: string; ips: string[] }> = [];
    let release: (() => void) | null = null;
    const ct = {
      flush: (stale: readonly StaleTarget[], o: { netns?: string } = {}) => new Promise<{ lines: number; deleted: number }>((resolve) => {
        calls.push({ netns: o.netns ?? '', ips: stale.map((x) => x.ip) });
        release = () => resolve({ lines: stale.length, deleted: 0 });
      }),
    };
    const log = { info: () => undefined, warn: () => undefined } as unknown as Logger;
    const clock = new ManualClock(0);
    const f = new StaleFlush(ct, log, clock, 200);
    const st = (ip: string): StaleTarget => ({ family: 'ipv4', proto: 'udp', vip: '10.30.0.2', port: 53, ip, targetPort: 53 });
    const none = { services: [], ingress: [] } as unknown as LbDesired;
    const served = (ip: string) => ({ services: [{ backends: [{ ip }] }], ingress: [] }) as unknown as LbDesired;
    f.queue('ns-a', [st('10.30.0.11')], none);
    const tick = () => new Promise((r) => setImmediate(r));
    await tick();
    assert.deepEqual(calls, [{ netns: 'ns-a', ips: ['10.30.0.11'] }], 'queued → run at once');
    f.queue('ns-a', [st('10.30.0.12')], none);
    f.queue('ns-b', [st('10.30.0.13')], none);
    f.queue('ns-a', [st('10.30.0.14')], none);
    await tick();
    assert.equal(calls.length, 1, 'one run at a time');
    release!();
    await tick();
    assert.equal(calls.length, 1, 'the gap before the next run');
    clock.advance(200);
    await tick();
    assert.deepEqual(calls[1], { netns: 'ns-a', ips: ['10.30.0.12', '10.30.0.14'] }, 'ns-a\'s removals merged into one run');
    // A backend served again before its run is not flushed (its flows are live).
    f.queue('ns-b', [], served('10.30.0.13'));
    release!();
    await tick();
    clock.advance(200);
    await tick();
    assert.equal(calls.length, 2, 'ns-b had nothing left to flush');
    await f.idle();
    assert.equal(f.stats.runs, 2);
  });
});

