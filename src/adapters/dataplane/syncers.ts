/**
 * One syncer per network namespace (its own last-applied state), shared by every dataplane
 * backend, so drift repair (`requestFullResync`) and forgetting a namespace work the same on
 * nftables and IPVS.
 *
 * A namespace's syncer lives from its first apply until `forget` (its task is gone): before
 * issue 17 nothing forgot, and every task that ever ran kept its syncer and desired state for
 * the agent's life (~6 KiB a task on the memory dataplane).
 */
import type { LbSyncer } from '../../core/lb/syncer.js';
import type { Exec } from '../exec.js';
import type { DataplaneOptions, NetnsOptions } from './types.js';

export class SyncerPool<S extends Pick<LbSyncer, 'requestFullResync'>> {
  private readonly byNs = new Map<string, S>();
  constructor(private readonly make: () => S) {}

  /** The namespace's syncer, created on first use. */
  get(netns: string | undefined): S {
    const k = netns ?? '';
    let s = this.byNs.get(k);
    if (!s) {
      s = this.make();
      this.byNs.set(k, s);
    }
    return s;
  }

  /** Next apply in the namespace is full (no syncer yet: it is anyway; none is created). */
  requestFullResync(netns: string | undefined): void {
    this.byNs.get(netns ?? '')?.requestFullResync();
  }

  /** Drops the namespace's sync state; a later apply there starts with a full resync. */
  forget(netns: string | undefined): void {
    this.byNs.delete(netns ?? '');
  }

  /** Namespaces with sync state. */
  get size(): number {
    return this.byNs.size;
  }
}

/** What both kernel backends share: their exec edge, options and per-namespace syncers. */
export abstract class SyncedDataplane<S extends Pick<LbSyncer, 'requestFullResync'>> {
  private readonly syncers: SyncerPool<S>;

  protected constructor(make: () => S, protected readonly exec: Exec, protected readonly opts: DataplaneOptions) {
    this.syncers = new SyncerPool(make);
  }

  protected syncer(netns: string | undefined): S {
    return this.syncers.get(netns);
  }

  /** Drift found elsewhere (e.g. a periodic check): the next apply in this namespace is a full resync. */
  requestFullResync(opts: NetnsOptions = {}): void {
    this.syncers.requestFullResync(opts.netns);
  }

  /** The namespace is gone (its task stopped): forget its sync state. The kernel state went with it. */
  forget(opts: NetnsOptions = {}): void {
    this.syncers.forget(opts.netns);
  }

  /** Namespaces this dataplane keeps sync state for (leak checks, tests). */
  syncedNamespaces(): number {
    return this.syncers.size;
  }
}
