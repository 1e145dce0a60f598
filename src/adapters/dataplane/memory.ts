/**
 * In-memory dataplane for unit tests and `--dry-run`: same validation and full/incremental planning
 * as the nftables backend (it renders the nft script and keeps it for inspection), no kernel.
 */
import { MeshError } from '../../core/errors.js';
import { expectedKernel, type KernelLbState } from '../../core/lb/kernel.js';
import type { Compiled, LbDesired } from '../../core/lb/model.js';
import { NftSyncer } from '../../core/lb/nft-syncer.js';
import { SyncerPool } from './syncers.js';
import type { ApplyResult, Dataplane, NetnsOptions } from './types.js';

export class MemoryDataplane implements Dataplane {
  readonly kind = 'memory' as const;
  private readonly syncers = new SyncerPool(() => new NftSyncer());
  private readonly kernel = new Map<string, Compiled>();
  private readonly scripts = new Map<string, string>();
  private failures = 0;

  private syncer(k: string): NftSyncer {
    return this.syncers.get(k);
  }

  requestFullResync(opts: NetnsOptions = {}): void {
    this.syncers.requestFullResync(opts.netns);
  }

  /**
   * Forgets the namespace's sync state, and its simulated kernel and script too: here the
   * "kernel" of a namespace lives in this object, and a forgotten namespace is a deleted one.
   */
  forget(opts: NetnsOptions = {}): void {
    const k = opts.netns ?? '';
    this.syncers.forget(k);
    this.kernel.delete(k);
    this.scripts.delete(k);
  }

  syncedNamespaces(): number {
    return this.syncers.size;
  }

  /** The next `n` applies fail with MESHD_EXEC_FAILED (kernel left as it was). */
  failNextApplies(n = 1): void {
    this.failures = n;
  }

  /** The nft script the last apply in this namespace would have sent (dry-run output). */
  lastScript(opts: NetnsOptions = {}): string {
    return this.scripts.get(opts.netns ?? '') ?? '';
  }

  async apply(desired: LbDesired, opts: NetnsOptions = {}): Promise<ApplyResult> {
    const k = opts.netns ?? '';
    const s = this.syncer(k);
    const plan = s.plan(desired);
    if (this.failures > 0) {
      this.failures--;
      s.failed();
      throw new MeshError('MESHD_EXEC_FAILED', `memory dataplane: injected ${plan.mode} failure`, { netns: opts.netns, mode: plan.mode });
    }
    s.committed(plan);
    this.kernel.set(k, plan.next);
    this.scripts.set(k, plan.nft);
    return { backend: 'memory', mode: plan.mode, changed: plan.changed, frontends: plan.frontends, bytes: plan.nft.length, durationMs: 0 , stale: plan.stale };
  }

  async readKernel(opts: NetnsOptions = {}): Promise<KernelLbState> {
    const c = this.kernel.get(opts.netns ?? '');
    return c ? { ...expectedKernel(c, 'memory') } : { backend: 'memory', frontends: [] };
  }

  async flush(opts: NetnsOptions = {}): Promise<void> {
    const k = opts.netns ?? '';
    this.syncer(k).failed();
    this.kernel.delete(k);
  }
}
