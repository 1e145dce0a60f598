/**
 * The LB subsystem with the overlay gate wired (memory dataplane, fake gossip and overlay): a
 * new remote backend is applied only after the overlay reports it programmed (no wait in the
 * apply loop: other changes go through meanwhile), a drain is applied at once even while a
 * backend is held, the status names the held backend, and a failed overlay keeps it out.
 * Simulated time (ManualClock): the schedule's and the loop's timers fire as the test steps it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LbSubsystem } from '../../../../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../../../../src/adapters/dataplane/memory.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import { endpointKey, locationKey } from '../../../../src/core/lb/overlay-gate.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import { lbStatus } from '../../../../src/agent/lb/status.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { stepUntil } from '../../../helpers/until.js';
import { FakeLbOverlay } from '../../../helpers/fake-lb-overlay.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-lbgate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAC = (last: number) => `02:42:0a:1e:00:${last.toString(16).padStart(2, '0')}`;
function rec(taskId: string, last: number, over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    v: 1, taskId, taskName: `web.${taskId}`, serviceId: 'svcweb', serviceName: 'web', network: 'app', networkName: 'app',
    ip: `10.30.0.${last}`, mac: MAC(last), node: 'n2', nodeIp: '10.99.1.2', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running', ...over,
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
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, child: () => log } as unknown as Logger;
  const clock = new ManualClock(1_000);
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'x-', dataDir: dir, gossip, overlay: overlay as unknown as OverlaySubsystem,
    clock, log, exec: {} as Exec, dataplane: dp, taskNetns: (id) => `ns-${id}`, checkMs: 3_600_000,
  });
  const put = (r: EndpointRecord) => { for (const l of listeners) l({ type: 'update', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: encodeEndpoint(r), owner: r.node } as unknown as GossipEvent); };
  const del = (r: EndpointRecord) => { for (const l of listeners) l({ type: 'delete', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: new Uint8Array(), owner: r.node } as unknown as GossipEvent); };
  const targets = async () => (await dp.readKernel({ netns: 'ns-local1' })).frontends.flatMap((f) => f.targets.map((t) => t.ip)).sort();
  /** Steps simulated time until the LB's loop has nothing pending or running. */
  const settle = async (): Promise<void> => {
    let done = false;
    void lb.idle().then(() => (done = true));
    await stepUntil(clock, 'lb loop idle', () => done);
  };
  const until = async (what: string, fn: () => Promise<boolean> | boolean): Promise<void> => void (await stepUntil(clock, what, fn, { maxMs: 5_000 }));
  return { lb, overlay, dp, put, del, targets, settle, until, clock };
}

describe('LB apply loop', () => {
  test('a run with nothing to do (it never awaits) does not wedge the loop: later changes are still applied', async () => {
    const { lb, overlay, put, del, targets, settle, until, clock } = setup();
    await lb.start();
    const local = rec('local1', 20, { node: 'n1', nodeIp: '10.99.1.1' });
    put(local);
    await until('lb active', async () => (await targets()).join() === '10.30.0.20');
    await settle();
    // A local task that comes and goes within the debounce: its namespace's sync finds no task
    // and no entry, and returns without awaiting (the shape that wedged the old loop, 2273f8d).
    const brief = rec('brief1', 30, { node: 'n1', nodeIp: '10.99.1.1', network: 'other', networkName: 'other' });
    put(brief);
    del(brief);
    clock.advance(100);
    await settle();
    const remote = rec('r1', 11);
    overlay.program(remote);
    put(remote);
    await until('a later change is applied', async () => (await targets()).join() === '10.30.0.11,10.30.0.20');
    await lb.stop();
  });
});

describe('LB subsystem with the overlay gate', () => {
  test('remote backend held until the overlay programs it; drain applied at once meanwhile; status explains', async () => {
    const { lb, overlay, dp, put, targets, settle, until } = setup();
    await lb.start();
    const local = rec('local1', 20, { node: 'n1', nodeIp: '10.99.1.1' });
    const old = rec('old1', 11);
    put(local);
    put(old);
    overlay.program(old);
    await until('lb active with both backends', async () => (await targets()).join() === '10.30.0.11,10.30.0.20');

    // A new remote task: not selected yet; the old one drains meanwhile — applied at once.
    const fresh = rec('new1', 12);
    put(fresh);
    put({ ...old, state: 'draining' });
    await settle();
    assert.deepEqual(await targets(), ['10.30.0.20'], 'only the local task: the old one drains, the new one waits for the overlay');
    assert.equal(lb.drained('app', 'old1'), true, 'the drain is acked without waiting for the overlay');
    assert.equal(lb.stats().heldBackends, 1);
    const st = await lbStatus(dp, [...(lb as unknown as { ns: Map<string, Parameters<typeof lbStatus>[1]> }).ns.values()][0]!);
    assert.match(st!.held.join('\n'), /backend 10\.30\.0\.12 \(task new1, service svcweb\) held back: the overlay has not programmed it yet/);
    assert.deepEqual(st!.frontends[0]!.held, [{ task: 'new1', target: '10.30.0.12:80', reason: 'overlay-pending' }]);

    // The overlay reports progress: re-planned and selected.
    overlay.program(fresh);
    await until('new backend selected after overlay progress', async () => (await targets()).join() === '10.30.0.12,10.30.0.20');
    assert.equal(lb.stats().heldBackends, 0);

    // Address reuse: another task on another node gets 10.30.0.11 (the overlay still holds it at the old MAC).
    const reuse = rec('new2', 11, { mac: MAC(99), nodeIp: '10.99.1.3', node: 'n3' });
    put(reuse);
    await settle();
    assert.deepEqual(await targets(), ['10.30.0.12', '10.30.0.20'], 'reused address at a new place: held (overlay-stale)');
    overlay.program(reuse);
    await until('reused address selected once re-programmed', async () => (await targets()).join() === '10.30.0.11,10.30.0.12,10.30.0.20');
    await lb.stop();
  });
});
