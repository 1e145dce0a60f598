/**
 * Agent-side heap of the LB subsystem under task churn (issue 17's leak: the dataplane's
 * SyncerPool kept a syncer and desired state for every namespace that ever ran).
 *
 * `node --expose-gc dist/bench/lb-heap.js [TASKS]`: starts and stops TASKS local tasks (default
 * 1000) one after another through the subsystem's gossip-table path (record created → its
 * namespace applied; record deleted → namespace forgotten) on the in-memory dataplane, and prints
 * heapUsed after a forced gc before and after the churn, with the syncer pool's size. Not part of
 * `npm run bench` (no kernel, no peer): a leak check whose figures go in the issue's note.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LbSubsystem } from '../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../src/adapters/dataplane/memory.js';
import { systemClock } from '../src/adapters/clock.js';
import type { Exec } from '../src/adapters/exec.js';
import type { Logger } from '../src/adapters/logger.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../src/core/endpoints.js';
import type { GossipEvent } from '../src/core/gossip/index.js';

const TASKS = Number(process.argv[2] ?? 1000);
/** Tasks churned before the first heap reading, so JIT code and warmed caches are not counted. */
const WARMUP = Number(process.argv[3] ?? 100);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function heap(): number {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
}

function rec(i: number): EndpointRecord {
  const ip = `10.30.${(i >> 8) & 255}.${(i & 255) || 1}`;
  return {
    v: 1, taskId: `task${i}`, taskName: `web.${i}`, serviceId: 'svcweb', serviceName: 'web', network: 'app', networkName: 'app',
    ip, mac: '02:42:0a:1e:00:01', node: 'n1', nodeIp: '10.99.1.1', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running',
  };
}

/** Syncers the memory dataplane keeps (the pool's size). */
function poolSize(dp: MemoryDataplane): number {
  return dp.syncedNamespaces();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-lbheap-'));
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const gossip = { core: { networks: () => [], tableEntries: () => [] }, onEvent: (l: (ev: GossipEvent) => void) => listeners.push(l), pump: () => undefined } as unknown as GossipPort;
  const overlay = { active: true, reconciledOnce: true, programmedVersion: 0, lastErrorMessage: null, programmed: () => new Map(), memberIps: () => ['10.99.1.1'], onProgress: () => undefined };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  const dp = new MemoryDataplane();
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'x-', dataDir: dir, gossip, overlay: overlay as unknown as OverlaySubsystem,
    clock: systemClock, log, exec: {} as Exec, dataplane: dp, taskNetns: (id) => `ns-${id}`, debounceMs: 0, checkMs: 3_600_000,
  });
  const emit = (type: 'update' | 'delete', r: EndpointRecord): void => {
    for (const l of listeners) l({ type, network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: type === 'delete' ? new Uint8Array() : encodeEndpoint(r), owner: r.node } as unknown as GossipEvent);
  };
  await lb.start();
  // One long-lived task, so the network and its service stay known throughout.
  emit('update', rec(0));
  await lb.idle();
  const churn = async (from: number, n: number): Promise<void> => {
    for (let i = from; i < from + n; i++) {
      const r = rec(i);
      emit('update', r);
      await lb.idle();
      emit('delete', r);
      await lb.idle();
    }
  };
  await churn(1, WARMUP);
  const before = heap();
  const t0 = performance.now();
  await churn(WARMUP + 1, TASKS);
  const ms = performance.now() - t0;
  const afterHeap = heap();
  const out = {
    tasks: TASKS, warmup: WARMUP, heapBeforeMiB: +(before / 2 ** 20).toFixed(2), heapAfterMiB: +(afterHeap / 2 ** 20).toFixed(2),
    growthKiB: Math.round((afterHeap - before) / 1024), perTaskBytes: Math.round((afterHeap - before) / TASKS),
    syncers: poolSize(dp), lbNamespaces: lb.stats().namespaces, seconds: +(ms / 1000).toFixed(1),
  };
  console.log(JSON.stringify(out));
  await lb.stop();
  rmSync(dir, { recursive: true, force: true });
}

void main();
