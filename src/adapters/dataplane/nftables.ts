/**
 * nftables dataplane: one `nft -f -` per apply (an atomic transaction), read back with
 * `nft -j list ruleset` (tables `ip meshd-lb` and `ip6 meshd-lb6`). The sync state (what was last applied) is kept per namespace in
 * this instance; any failure makes the next apply of that namespace a full resync.
 */
import { performance } from 'node:perf_hooks';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { KernelLbState } from '../../core/lb/kernel.js';
import type { LbDesired } from '../../core/lb/model.js';
import { NFT_FAMILY, NFT_TABLE, renderNftFlush } from '../../core/lb/nftables-render.js';
import { SyncedDataplane } from './syncers.js';
import { NftSyncer } from '../../core/lb/nft-syncer.js';
import { conntrackSysctls, DEFAULT_IDLE_TIMEOUTS } from '../../core/lb/timeouts.js';
import { realExec, type Exec } from '../exec.js';
import { parseNftLb } from './nft-parse.js';
import { parseNft6Lb, tableOf } from './nft6-parse.js';
import type { ApplyResult, Dataplane, DataplaneOptions, NetnsOptions } from './types.js';

export class NftablesDataplane extends SyncedDataplane<NftSyncer> implements Dataplane {
  readonly kind = 'nftables' as const;

  constructor(exec: Exec = realExec, opts: DataplaneOptions = {}) {
    super(() => new NftSyncer(), exec, opts);
  }

  async apply(desired: LbDesired, opts: NetnsOptions = {}): Promise<ApplyResult> {
    const t0 = performance.now();
    const s = this.syncer(opts.netns);
    const plan = s.plan(desired); // throws MESHD_BAD_ARGUMENT before touching anything
    try {
      if (plan.nft) await this.exec.check('nft', ['-f', '-'], { input: plan.nft, netns: opts.netns });
      if (plan.mode === 'full' && opts.sysctls !== false) {
        // conntrack is loaded by now (the table has NAT chains); timeouts are per namespace.
        await this.exec.check('sysctl', ['-q', '-w', ...conntrackSysctls(this.opts.timeouts ?? DEFAULT_IDLE_TIMEOUTS)], { netns: opts.netns });
      }
    } catch (e) {
      s.failed();
      const err = toMeshError(e);
      throw new MeshError(err.code === 'MESHD_INTERNAL' ? 'MESHD_INTERNAL' : 'MESHD_EXEC_FAILED', `nftables ${plan.mode} sync failed${opts.netns ? ` in ${opts.netns}` : ''}: ${err.message}`, { netns: opts.netns, mode: plan.mode }, { cause: e });
    }
    s.committed(plan);
    return { backend: 'nftables', mode: plan.mode, changed: plan.changed, frontends: plan.frontends, bytes: plan.nft.length, durationMs: performance.now() - t0 , stale: plan.stale };
  }

  /**
   * One `nft -j list ruleset` per namespace (nft6-parse.ts says why not one `list table` per
   * table): the IPv4 table `ip meshd-lb` and the IPv6 VIP table `ip6 meshd-lb6`, either of which
   * may be absent (no frontend of that family: nothing expected either).
   */
  async readKernel(opts: NetnsOptions = {}): Promise<KernelLbState> {
    const r = await this.exec.run('nft', ['-j', 'list', 'ruleset'], { netns: opts.netns });
    if (r.code !== 0) throw new MeshError('MESHD_EXEC_FAILED', `nft list ruleset failed: ${r.stderr.trim().slice(0, 300)}`, { netns: opts.netns });
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch (e) {
      throw new MeshError('MESHD_INTERNAL', 'nft -j printed invalid JSON', { netns: opts.netns }, { cause: e });
    }
    const frontends = [...parseNftLb(tableOf(doc, NFT_FAMILY, NFT_TABLE)), ...parseNft6Lb(doc)];
    return { backend: 'nftables', frontends: frontends.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) };
  }

  async flush(opts: NetnsOptions = {}): Promise<void> {
    const s = this.syncer(opts.netns);
    s.failed();
    await this.exec.check('nft', ['-f', '-'], { input: renderNftFlush(), netns: opts.netns });
  }
}
