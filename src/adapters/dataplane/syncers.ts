/**
 * One LbSyncer per network namespace (its own last-applied state), shared by every dataplane
 * backend, so drift repair (`requestFullResync`) works the same on nftables and IPVS.
 */
import { LbSyncer } from '../../core/lb/syncer.js';
import type { Exec } from '../exec.js';
import type { DataplaneOptions, NetnsOptions } from './types.js';

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

/** What both kernel backends share: their exec edge, options and per-namespace syncers. */
export abstract class SyncedDataplane {
  private readonly syncers: SyncerPool;

  protected constructor(kind: 'nftables' | 'ipvs', protected readonly exec: Exec, protected readonly opts: DataplaneOptions) {
    this.syncers = new SyncerPool(kind);
  }

  protected syncer(netns: string | undefined): LbSyncer {
    return this.syncers.get(netns);
  }

  /** Drift found elsewhere (e.g. a periodic check): the next apply in this namespace is a full resync. */
  requestFullResync(opts: NetnsOptions = {}): void {
    this.syncer(opts.netns).requestFullResync();
  }
}
