/**
 * IPVS dataplane (Docker's way, see core/lb/ipvs-render.ts): per apply at most one
 * `ip -force -batch -` (VIP addresses on lo), one `nft -f -` (fwmark table) and one `ipvsadm -R`;
 * on full syncs also `ipvsadm --set` (idle timeouts, moby#31208), the IPVS sysctls, and first a
 * read-back of the kernel (`ipvsadm -S -n` + the mark table): a full resync is the difference from
 * it, never `ipvsadm -C` on a live node. Read back with `ipvsadm -S -n` joined with the mark table.
 *
 * This kernel has no ip_vs, so this backend is covered here by golden tests of what it renders and
 * by unit tests with a recording Exec; the shared compliance suite runs it inside the VM harness.
 */
import { performance } from 'node:perf_hooks';
import { MeshError, toMeshError } from '../../core/errors.js';
import { formatHostPort } from '../../core/hostport.js';
import type { KernelFrontend, KernelLbState } from '../../core/lb/kernel.js';
import { IPVS_NFT6_TABLE, IPVS_NFT_TABLE, renderIpvs6 } from '../../core/lb/ipvs-render.js';
import { parseIpvsSaveText, type IpvsKernelView } from '../../core/lb/ipvs-save.js';
import { canonicalIp6, isIp6 } from '../../core/ipam/addr6.js';
import { vipKey, type LbDesired, type Target } from '../../core/lb/model.js';
import { SyncedDataplane } from './syncers.js';
import { IpvsSyncer } from '../../core/lb/ipvs-syncer.js';
import { DEFAULT_IDLE_TIMEOUTS, IPVS_SYSCTLS, ipvsTimeoutArgs } from '../../core/lb/timeouts.js';
import { realExec, type Exec } from '../exec.js';
import { parseNftMarks, type MarkInfo } from './nft-parse.js';
import type { ApplyResult, Dataplane, DataplaneOptions, NetnsOptions } from './types.js';

export interface IpvsService {
  fwmark: number;
  reals: { ip: string; port: number; weight: number }[];
}

/** Parses `ipvsadm -S -n` (restore format): fwmark services and their real servers (core/lb/ipvs-save.ts). */
export function parseIpvsSave(text: string): Map<number, IpvsService> {
  const out = new Map<number, IpvsService>();
  for (const s of parseIpvsSaveText(text)) {
    if (s.fwmark !== null) out.set(s.fwmark, { fwmark: s.fwmark, reals: s.reals.map((r) => ({ ip: r.ip, port: r.port, weight: r.weight })) });
  }
  return out;
}

/**
 * The frontend an IPv6 address service stands for (`-t [fd00::10]:80` → `vip fd00::10 tcp 80`);
 * undefined for an IPv4 address service, which meshd never programs and does not report.
 */
export function v6Frontend(spec: string): MarkInfo | undefined {
  const m = /^(-t|-u) \[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(spec);
  if (!m) return undefined;
  const proto = m[1] === '-u' ? 'udp' : 'tcp';
  if (!isIp6(m[2]!)) return undefined;
  const vip = canonicalIp6(m[2]!); // the model keeps IPv6 text canonical; ipvsadm prints inet_ntop's
  const port = Number(m[3]);
  return { key: vipKey(vip, proto, port), kind: 'vip', vip, proto, port, masquerade: false };
}

export class IpvsDataplane extends SyncedDataplane<IpvsSyncer> implements Dataplane {
  readonly kind = 'ipvs' as const;

  constructor(exec: Exec = realExec, opts: DataplaneOptions = {}) {
    super(() => new IpvsSyncer(), exec, opts);
  }

  async apply(desired: LbDesired, opts: NetnsOptions = {}): Promise<ApplyResult> {
    const t0 = performance.now();
    const s = this.syncer(opts.netns);
    const netns = opts.netns;
    // A full resync is a diff against what the kernel holds: read it first (read-only; a read
    // failure is an apply failure like any other).
    let kernel: IpvsKernelView | undefined;
    if (s.fullNext()) {
      try {
        kernel = await this.readView(netns);
      } catch (e) {
        s.failed();
        throw new MeshError('MESHD_EXEC_FAILED', `ipvs full sync failed${netns ? ` in ${netns}` : ''}: cannot read the kernel: ${toMeshError(e).message}`, { netns, mode: 'full' }, { cause: e });
      }
    }
    const plan = s.plan(desired, kernel);
    try {
      if (plan.mode === 'full' && opts.sysctls !== false) {
        await this.exec.check('ipvsadm', ipvsTimeoutArgs(this.opts.timeouts ?? DEFAULT_IDLE_TIMEOUTS), { netns });
        await this.exec.check('sysctl', ['-q', '-w', ...IPVS_SYSCTLS], { netns });
      }
      if (plan.addrs) await this.exec.check('ip', ['-force', '-batch', '-'], { input: plan.addrs, netns });
      // `ipvsadm -R`, not Debian's `ipvsadm-restore` script: that one runs `ipvsadm -C` first, which would
      // wipe every service before an incremental plan (full plans start with their own -C).
      if (plan.ipvs) await this.exec.check('ipvsadm', ['-R'], { input: plan.ipvs, netns });
      if (plan.nft) await this.exec.check('nft', ['-f', '-'], { input: plan.nft, netns });
    } catch (e) {
      s.failed();
      const err = toMeshError(e);
      throw new MeshError('MESHD_EXEC_FAILED', `ipvs ${plan.mode} sync failed${netns ? ` in ${netns}` : ''}: ${err.message}`, { netns, mode: plan.mode }, { cause: e });
    }
    s.committed(plan);
    return { backend: 'ipvs', mode: plan.mode, changed: plan.changed, frontends: plan.frontends, bytes: plan.nft.length + plan.ipvs.length + plan.addrs.length, durationMs: performance.now() - t0 , stale: plan.stale };
  }

  /** One mark table's listing (mark → frontend); empty when the table is absent. */
  private async readMarks(netns: string | undefined, family: 'ip' | 'ip6'): Promise<Map<number, MarkInfo>> {
    const r = await this.exec.run('nft', ['-j', 'list', 'table', family, family === 'ip' ? IPVS_NFT_TABLE : IPVS_NFT6_TABLE], { netns });
    if (r.code === 0) {
      try {
        return parseNftMarks(JSON.parse(r.stdout), family);
      } catch (e) {
        throw new MeshError('MESHD_INTERNAL', 'nft -j printed invalid JSON', { netns }, { cause: e });
      }
    } else if (!/No such file or directory/.test(r.stderr)) {
      throw new MeshError('MESHD_EXEC_FAILED', `nft list table failed: ${r.stderr.trim().slice(0, 300)}`, { netns });
    }
    return new Map();
  }

  /**
   * `ipvsadm -S -n` and the mark tables. The `ip6` one (IPv6 published ports) is read only when
   * IPVS holds an IPv6 fwmark service (`-f MARK -6`): without one nothing in it routes a packet
   * to IPVS, and most namespaces (every task's) never have one — one exec fewer per read there.
   */
  private async readRaw(netns: string | undefined): Promise<{ save: string; marks: Map<number, MarkInfo>; marks6: Map<number, MarkInfo> }> {
    const save = await this.exec.check('ipvsadm', ['-S', '-n'], { netns });
    const marks = await this.readMarks(netns, 'ip');
    const marks6 = parseIpvsSaveText(save).some((x) => x.spec.endsWith(' -6')) ? await this.readMarks(netns, 'ip6') : new Map<number, MarkInfo>();
    return { save, marks, marks6 };
  }

  /** What a full resync diffs against: every IPVS service, and frontend key → mark from the mark table. */
  private async readView(netns: string | undefined): Promise<IpvsKernelView> {
    const { save, marks, marks6 } = await this.readRaw(netns);
    return { services: parseIpvsSaveText(save), marks: new Map([...marks, ...marks6].map(([m, i]) => [i.key, m])) };
  }

  /**
   * As faithful as the nftables read-back: each fwmark service the mark table routes to is a
   * frontend (weight > 0 reals = targets with their weights, weight 0 = draining, the scheduler);
   * scheduler flags or a real not masqueraded are `issues`; a fwmark service the mark table
   * does not route to (left behind, or its mark lost) is `stray`; `-f MARK -6` services (IPv6
   * published ports) are joined with the `ip6` mark table. IPv6 `[VIP]:PORT` services are
   * the IPv6 VIP frontends; IPv4 address:port services are not meshd's and are not reported (a
   * full resync removes them, see ipvs-render.ts).
   */
  async readKernel(opts: NetnsOptions = {}): Promise<KernelLbState> {
    const { save, marks, marks6 } = await this.readRaw(opts.netns);
    const frontends: KernelFrontend[] = [];
    const stray: string[] = [];
    for (const svc of parseIpvsSaveText(save)) {
      // IPv6 VIPs are address services (ipvs-render.ts): the spec names the frontend, no mark needed
      // IPv6 published ports are `-f MARK -6` services, marked by the ip6 table (ipvs-render.ts renderIpvs6)
      const m = svc.fwmark === null ? v6Frontend(svc.spec) : (svc.spec.endsWith(' -6') ? marks6 : marks).get(svc.fwmark);
      if (svc.fwmark === null && !m) continue;
      const reals = svc.reals.map((x) => formatHostPort(x.ip, x.port)).join(',') || 'no real server';
      if (!m) {
        stray.push(`stray IPVS service fwmark ${svc.fwmark}${svc.spec.endsWith(' -6') ? ' (IPv6)' : ''} (${reals}): no frontend in the mark table routes to it`);
        continue;
      }
      const ipOf = (ip: string): string => (isIp6(ip) ? canonicalIp6(ip) : ip);
      const pick = (w: (x: number) => boolean): Target[] => svc.reals.filter((x) => w(x.weight)).map((x) => ({ ip: ipOf(x.ip), port: x.port }));
      // scheduler and weights are compared with the expected ones (core/lb/kernel.ts): meshd sets rr, wrr or sh
      const issues = [
        ...(svc.extra ? [`IPVS scheduler flags ${svc.extra}, want none`] : []),
        ...svc.reals.filter((x) => x.forward !== 'm').map((x) => `real ${x.ip}:${x.port} forwards by -${x.forward}, want -m (masquerade)`),
      ];
      const live = svc.reals.filter((x) => x.weight > 0);
      frontends.push({ ...m, targets: live.map((x) => ({ ip: ipOf(x.ip), port: x.port })), draining: pick((w) => w === 0), scheduler: svc.scheduler, weights: live.map((x) => x.weight), ...(issues.length ? { issues } : {}) });
    }
    return { backend: 'ipvs', frontends: frontends.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)), ...(stray.length ? { stray } : {}) };
  }

  async flush(opts: NetnsOptions = {}): Promise<void> {
    const s = this.syncer(opts.netns);
    const last = s.lastApplied();
    s.failed();
    await this.exec.check('ipvsadm', ['-C'], { netns: opts.netns });
    await this.exec.check('nft', ['-f', '-'], { input: `table ip ${IPVS_NFT_TABLE}\ndelete table ip ${IPVS_NFT_TABLE}\n${renderIpvs6([])}`, netns: opts.netns });
    const vips = new Set<string>();
    for (const f of last?.values() ?? []) if (f.vip) vips.add(f.vip);
    if (vips.size) await this.exec.check('ip', ['-force', '-batch', '-'], { input: [...vips].map((v) => `address del ${v}/32 dev lo`).join('\n') + '\n', netns: opts.netns });
  }
}
