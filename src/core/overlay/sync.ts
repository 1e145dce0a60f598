/**
 * When a (re)started overlay may start removing things (pure). Until then it reconciles in
 * additions-only mode (core/overlay/diff.ts `additionsOnly`): a reconcile on partial knowledge
 * would delete sandboxes and FDB entries that adopted tasks still use.
 *
 * Synced means: joined the cluster (when this node has networks it cannot be alone in them),
 * and every live peer of each network this node hosts has shown up in that network's table.
 */
import type { GuardMemberState } from './remotes.js';

export interface SyncView {
  /** Gossip reported a successful join since the agent started. */
  joined: boolean;
  /** This node's name (it is not waited for). */
  self: string;
  members: ReadonlyArray<{ name: string; state: GuardMemberState }>;
  /** Gossip networks this node is on. */
  networks: readonly string[];
  /** Networks the overlay hosts (defined by the worker). */
  hosted: ReadonlySet<string>;
  /** Owners of the `endpoints` entries held for a network. */
  owners(network: string): Iterable<string>;
  /** Nodes gossip knows to be on a network. */
  networkNodes(network: string): readonly string[];
}

export function gossipSynced(v: SyncView): boolean {
  const alive = new Set(v.members.filter((m) => m.state === 'alive' && m.name !== v.self).map((m) => m.name));
  if (!v.joined && alive.size === 0 && v.networks.length > 0) return false;
  for (const net of v.networks) {
    if (!v.hosted.has(net)) continue;
    const owners = new Set(v.owners(net));
    for (const n of v.networkNodes(net)) if (alive.has(n) && !owners.has(n)) return false;
  }
  return true;
}
