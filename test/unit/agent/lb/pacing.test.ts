/**
 * How many dataplane transactions (one `nft -f` process each per namespace) a node runs under a burst of
 * 100 endpoint changes in one second (issue 18 §1: at 100 changes/s every agent of a 10-node lab was
 * CPU-bound). The LB's loop paces its runs (core/lb/schedule.ts LB_MAX_DUTY): changes that arrive while a
 * run is in flight or in the gap after it go in one transaction. Simulated time; each apply takes 20 ms
 * (a `nft -f` on a loaded 2-core machine), the end state holds every change either way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LbSubsystem } from '../../../../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../../../../src/adapters/dataplane/memory.js';
import type { ApplyResult, NetnsOptions } from '../../../../src/adapters/dataplane/types.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import type { LbDesired } from '../../../../src/core/lb/model.js';
import { endpointKey } from '../../../../src/core/lb/overlay-gate.js';
import { flush, stepUntil } from '../../../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-lbpace-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const APPLY_MS = 20;

/** The memory dataplane, with each apply taking APPLY_MS of simulated time; counts applies per namespace. */
class SlowDataplane extends MemoryDataplane {
  readonly applies: Array<{ netns: string; at: number }> = [];
  constructor(private readonly clock: ManualClock) {
    super();
  }
  override async apply(desired: LbDesired, opts: NetnsOptions = {}): Promise<ApplyResult> {
    this.applies.push({ netns: opts.netns ?? '', at: this.clock.now() });
    await new Promise<void>((resolve) => this.clock.setTimer(APPLY_MS, resolve));
    return super.apply(desired, opts);
  }
}

function rec(i: number, node: string, state: EndpointRecord['state'] = 'running'): EndpointRecord {
  return {
    v: 1, taskId: `t${i}`, taskName: `web.${i}`, serviceId: i === 0 ? 'sclient' : 'sweb', serviceName: i === 0 ? 'client' : 'web', network: 'app', networkName: 'app',
    ip: `10.30.${i >> 8}.${(i & 255) + 1}`, mac: '02:42:0a:1e:00:01', node, nodeIp: node === 'n1' ? '10.99.1.1' : '10.99.1.2', vip: i === 0 ? '10.30.255.1' : '10.30.255.2',
    endpointMode: 'vip', aliases: [], ports: [{ proto: 'tcp', target: 80 }], state,
  };
}

/** 100 changes of remote endpoints, one every 10 ms; returns the local namespace's applies during that second. */
async function burst(maxApplyDuty?: number): Promise<{ applies: number; backends: number }> {
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const gossip = { core: { networks: () => [], tableEntries: () => [] }, onEvent: (l: (ev: GossipEvent) => void) => listeners.push(l), pump: () => undefined } as unknown as GossipPort;
  // the overlay holds every remote endpoint already (else the overlay gate holds new backends back)
  const programmed = new Map<string, string>();
  for (let i = 1; i <= 100; i++) programmed.set(endpointKey('app', rec(i, 'n2').ip), `02:42:0a:1e:00:01@10.99.1.2`);
  const overlay = { active: true, reconciledOnce: true, programmedVersion: 1, lastErrorMessage: null, programmed: () => programmed, memberIps: () => ['10.99.1.1', '10.99.1.2'], onProgress: () => undefined };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  const clock = new ManualClock(1_000);
  const dp = new SlowDataplane(clock);
  const lb = new LbSubsystem({
    nodeName: 'n1', underlayIp: '10.99.1.1', prefix: 'x-', dataDir: dir, gossip, overlay: overlay as unknown as OverlaySubsystem,
    clock, log, exec: {} as Exec, dataplane: dp, taskNetns: (id) => `ns-${id}`, checkMs: 3_600_000, ...(maxApplyDuty !== undefined ? { maxApplyDuty } : {}),
  });
  const emit = (r: EndpointRecord): void => {
    for (const l of listeners) l({ type: 'update', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: encodeEndpoint(r), owner: r.node } as unknown as GossipEvent);
  };
  const settle = async (what: string): Promise<void> => {
    let done = false;
    void lb.idle().then(() => (done = true));
    await stepUntil(clock, what, () => done);
  };
  await lb.start();
  emit(rec(0, 'n1')); // the local task whose namespace balances `web`
  await settle('local task applied');
  dp.applies.length = 0;
  const t0 = clock.now();
  for (let i = 1; i <= 100; i++) {
    emit(rec(i, 'n2'));
    await flush();
    clock.advance(10);
    await flush();
  }
  const during = dp.applies.filter((a) => a.netns === 'ns-t0' && a.at < t0 + 1000).length;
  await settle('burst applied');
  const backends = (await dp.readKernel({ netns: 'ns-t0' })).frontends.reduce((n, f) => n + f.targets.length, 0);
  await lb.stop();
  return { applies: during, backends };
}

test('a burst of 100 changes in 1 s: the LB runs 12 transactions per namespace, not 33, and applies every change', async () => {
  const unpaced = await burst(1);
  const paced = await burst();
  console.log(`nft -f per namespace during 100 changes in 1 s (apply ${APPLY_MS} ms): ${unpaced.applies} unpaced, ${paced.applies} paced`);
  assert.equal(unpaced.backends, 101, 'every endpoint programmed (100 web + the client itself)');
  assert.equal(paced.backends, 101, 'every endpoint programmed (100 web + the client itself)');
  assert.equal(unpaced.applies, 33);
  assert.equal(paced.applies, 12);
});
