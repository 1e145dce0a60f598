/**
 * One LbSyncer per network namespace (its own last-applied state), shared by every dataplane
 * backend, so drift repair (`requestFullResync`) works the same on nftables and IPVS.
 */
import { LbSyncer } from '../../core/lb/syncer.js';

export class SyncerPool {
  private readonly byNs = new Map<string, LbSyncer>();
  constructor(private readonly kind: 'nftables' | 'ipvs') {}

  get(netns: string | undefined): LbSyncer {
    const k = netns ?? '';
    let s = this.byNs.get(k);
    if (!s) {
      s = new LbSyncer(this.kind);
      this.byNs.set(k, s);
    }
    return s;
  }
}
