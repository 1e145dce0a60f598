/**
 * nftables dataplane: one `nft -f -` per apply (an atomic transaction), read back with
 * `nft -j list table ip meshd-lb`. The sync state (what was last applied) is kept per namespace in
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
    return { backend: 'nftables', mode: plan.mode, changed: plan.changed, frontends: plan.frontends, bytes: plan.nft.length, durationMs: performance.now() - t0 };
  }

  async readKernel(opts: NetnsOptions = {}): Promise<KernelLbState> {
    const r = await this.exec.run('nft', ['-j', 'list', 'table', NFT_FAMILY, NFT_TABLE], { netns: opts.netns });
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return { backend: 'nftables', frontends: [] };
      throw new MeshError('MESHD_EXEC_FAILED', `nft list table failed: ${r.stderr.trim().slice(0, 300)}`, { netns: opts.netns });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(r.stdout);
    } catch (e) {
      throw new MeshError('MESHD_INTERNAL', 'nft -j printed invalid JSON', { netns: opts.netns }, { cause: e });
    }
    return { backend: 'nftables', frontends: parseNftLb(doc) };
  }

  async flush(opts: NetnsOptions = {}): Promise<void> {
    const s = this.syncer(opts.netns);
    s.failed();
    await this.exec.check('nft', ['-f', '-'], { input: renderNftFlush(), netns: opts.netns });
  }
}
