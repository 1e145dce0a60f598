/**
 * The overlay's restart wait: after a (re)start, removals are held until gossip has synced — joined
 * the cluster, and every live peer of each network this node hosts has shown up in its endpoint
 * table (core/overlay/sync.ts decides) — or until the bound passed. Why: reconciling on partial
 * knowledge would delete FDB entries that running tasks use (see overlay.ts, "Restart safety").
 */
import type { TimerClock } from '../../core/clock.js';
import { ENDPOINT_TABLE } from '../../core/endpoints.js';
import { gossipSynced } from '../../core/overlay/sync.js';
import { type GossipPort, SYNC_POLL_MS } from './options.js';

export interface SyncWaitInput {
  gossip: GossipPort;
  clock: TimerClock;
  /** This node's name. */
  self: string;
  /** The bound (ms). */
  timeoutMs: number;
  joined: () => boolean;
  stopped: () => boolean;
  /** Networks this node hosts (read each poll). */
  hosted: () => ReadonlySet<string>;
}

/** Waits (on the injected clock) until gossip has synced, at most timeoutMs; returns the ms waited. */
export async function waitForGossipSync(i: SyncWaitInput): Promise<number> {
  const { gossip, clock } = i;
  const t0 = clock.now();
  const deadline = t0 + i.timeoutMs;
  while (clock.now() < deadline && !i.stopped()) {
    const synced = gossipSynced({
      joined: i.joined(), self: i.self, members: gossip.core.members(), networks: gossip.core.networks(),
      hosted: new Set(i.hosted()),
      owners: (net) => gossip.core.tableEntries(net, ENDPOINT_TABLE).map((e) => e.owner),
      networkNodes: (net) => gossip.core.networkNodes(net),
    });
    if (synced) break;
    await new Promise<void>((r) => clock.setTimer(Math.min(SYNC_POLL_MS, deadline - clock.now()), r));
  }
  return Math.round(clock.now() - t0);
}
