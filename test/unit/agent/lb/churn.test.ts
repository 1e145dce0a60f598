/**
 * Task churn does not grow the LB (issue 17's leak): every namespace a task ever had used to keep
 * its syncer and desired state in the dataplane's SyncerPool for the agent's life. Tasks started
 * and stopped through the subsystem's gossip-table path leave no syncer and no namespace entry
 * behind. Counts, not heap figures (those are in bench/lb-heap.ts). Simulated time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LbSubsystem } from '../../../../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../../../../src/adapters/dataplane/memory.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import { stepUntil } from '../../../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-lbchurn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rec(i: number, network = 'app'): EndpointRecord {
  return {
    v: 1, taskId: `task${i}`, taskName: `web.${i}`, serviceId: 'svcweb', serviceName: 'web', network, networkName: network,
    ip: `10.30.${i >> 8}.${(i & 255) || 1}`, mac: '02:42:0a:1e:00:01', node: 'n1', nodeIp: '10.99.1.1', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running',
  };
}

test('200 tasks started and stopped through the LB leave no syncer and no namespace behind', async () => {
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const gossip = { core: { networks: () => [], tableEntries: () => [] }, onEvent: (l: (ev: GossipEvent) => void) => listeners.push(l), pump: () => undefined } as unknown as GossipPort;
  const overlay = { active: true, reconciledOnce: true, programmedVersion: 0, lastErrorMessage: null, programmed: () => new Map(), memberIps: () => ['10.99.1.1'], onProgress: () => undefined };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  const clock = new ManualClock(1_000);
  const dp = new MemoryDataplane();
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'x-', dataDir: dir, gossip, overlay: overlay as unknown as OverlaySubsystem,
    clock, log, exec: {} as Exec, dataplane: dp, taskNetns: (id) => `ns-${id}`, checkMs: 3_600_000,
  });
  const emit = (type: 'update' | 'delete', r: EndpointRecord): void => {
    for (const l of listeners) l({ type, network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: type === 'delete' ? new Uint8Array() : encodeEndpoint(r), owner: r.node } as unknown as GossipEvent);
  };
  const settle = async (what: string): Promise<void> => {
    let done = false;
    void lb.idle().then(() => (done = true));
    await stepUntil(clock, what, () => done);
  };
  await lb.start();
  try {
    for (let i = 1; i <= 200; i++) {
      // Every tenth task also sits on a second network (two records, one namespace).
      const recs = i % 10 === 0 ? [rec(i), rec(i, 'db')] : [rec(i)];
      for (const r of recs) emit('update', r);
      await settle(`task${i} applied`);
      assert.equal(dp.syncedNamespaces(), 1, `task${i} running: its namespace synced`);
      assert.ok((await dp.readKernel({ netns: `ns-task${i}` })).frontends.length > 0, `task${i}'s VIP programmed`);
      for (const r of recs) emit('delete', r);
      await settle(`task${i} forgotten`);
    }
    assert.equal(dp.syncedNamespaces(), 0, 'the dataplane keeps no sync state for stopped tasks');
    assert.equal(lb.stats().namespaces, 0, 'the LB keeps no namespace entry for stopped tasks');
    assert.equal(lb.stats().failures, 0);
  } finally {
    await lb.stop();
  }
});
