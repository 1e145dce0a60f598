/**
 * The link's half of "secure by default" (issue 16 §4): the cluster's gossip keyring travels
 * over the cluster's mTLS channels only.
 *  - `cluster init`: the node's ring (a new random key if it has none) becomes the cluster's;
 *  - `cluster join`: the join answer carries the ring; it is adopted before the link activates;
 *  - every dispatcher round: the ring is pulled from the manager
 *    (`GET /v1/gossip-keys`) and adopted, so a node that started without it (a restarted node
 *    whose ring file was lost) gets it, and a change of the cluster's ring reaches every node.
 * Pulling rather than pushing through the per-node key routes: the link already polls the
 * manager with the node's certificate, so no new channel, no fan-out from the leader, and a
 * node that was down catches up by itself. Keys are never logged: only fingerprints.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../adapters/logger.js';
import { KEY_BYTES } from '../../adapters/gossip/keyring.js';
import { DEFAULT_ROTATION_PERIOD_MS } from '../../manager/gossip-keys.js';

/** What the link uses of the node's keyring (src/agent/gossip/keys.ts KeyStore). */
export interface KeyHolder {
  exportKeys(): string[] | undefined;
  adopt(keysB64: readonly string[]): boolean;
  list(): { keys: Array<{ fingerprint: string; primary: boolean }> };
}

export class ClusterGossipKeys {
  /**
   * @param rotationPeriodMs the leader rotates the ring this often (config
   *   `manager.gossipKeyRotationMs`, default 12 h like swarm; 0 = only on `cluster update --rotate-gossip-key`).
   */
  constructor(private readonly keys: KeyHolder, private readonly insecure: boolean, private readonly log: Logger, readonly rotationPeriodMs: number = DEFAULT_ROTATION_PERIOD_MS) {}

  /** The ring `cluster init` stores: the node's own, or a new key (none with `gossip.insecure`). */
  forInit(): string[] | undefined {
    const own = this.keys.exportKeys();
    if (own || this.insecure) return own;
    this.keys.adopt([randomBytes(KEY_BYTES).toString('base64')]);
    this.log.info({ keys: this.keys.list().keys }, 'created the cluster gossip key');
    return this.keys.exportKeys();
  }

  /** Adopts the cluster's ring (join answer or pull); an empty or absent ring (older cluster) changes nothing. */
  take(ring: readonly string[] | undefined, from: string): void {
    if (!ring?.length) return;
    if (this.keys.adopt(ring)) this.log.info({ from, keys: this.keys.list().keys }, 'gossip keyring updated from the cluster');
  }
}
