/**
 * A gossip cluster of N peers of one kind in lab host namespaces, for bench/gossip.ts.
 *
 * - `meshd`: `labUp` (what `netctl lab up` runs): one meshd agent per host namespace on UDP/TCP 7946, queried on
 *   its control socket at /v1/gossip/members, /v1/gossip/metrics and /v1/gossip/tables.
 * - `memberlist`: the same lab namespaces and underlay (src/lab/plan.ts renderers, same names, so `labDown`
 *   removes them), but no meshd agent: one bench/go/bin/memberlist-peer per namespace on port 7947, started
 *   with `ip netns exec`, queried on /run/meshd-bench/<lab>/<node>.sock at /members, /metrics, /broadcast, /kv.
 *   Starting 32 idle meshd agents only to kill them would cost the machine's 2 cores for nothing.
 *
 * Both kinds join through the same seeds (up to 3 lower-numbered nodes). Wire bytes are read for both from
 * the switch namespace's port counters (port nI's rx = host nI's eth0 tx), one `ip` process for all nodes.
 * `stop()` always removes every process, namespace and socket (call it in `finally`).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../../src/adapters/api/client.js';
import type { Exec } from '../../src/adapters/exec.js';
import { MeshError } from '../../src/core/errors.js';
import type { GossipConfig } from '../../src/core/gossip/config.js';
import { pushPullScale } from '../../src/core/gossip/formulas.js';
import { labDown, labSignalAgent, labUp, listNamespaces } from '../../src/lab/lab.js';
import {
  clientNs, labOfNamespace, planLab, renderCreateNamespaces, renderHost, renderSwitch, switchNs, underlayHosts,
  type LabNodePlan,
} from '../../src/lab/plan.js';

export type PeerKind = 'meshd' | 'memberlist';
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface MemberRow {
  name: string;
  addr: string;
  state: MemberState;
  incarnation: number | null;
}

export interface PeerMetrics {
  bytesOut: number;
  bytesIn: number;
  packetsOut: number;
  packetsIn: number;
  [k: string]: unknown;
}

export interface ClusterOptions {
  kind: PeerKind;
  lab: string;
  nodes: number;
  /** meshd preset; memberlist gets the same timings as explicit flags (see memberlistFlags). */
  preset: 'local' | 'lan';
  config: GossipConfig;
  exec: Exec;
  /**
   * Encrypt gossip on both kinds alike (default true): meshd's lab agents with their per-lab key, memberlist
   * with a fresh AES-256 key of its own (its SecretKey, read from a 0600 file, never argv). A comparison of
   * wire bytes with crypto on one side only weighs 29 bytes a datagram against one kind.
   */
  encrypt?: boolean;
  onProgress?: (msg: string) => void;
}

export interface ClusterNode extends LabNodePlan {
  pid: number | null;
  /** Control socket: meshd's API socket or memberlist-peer's view socket. */
  sock: string;
}

export const MEMBERLIST_PORT = 7947;
export const BENCH_RUN_DIR = '/run/meshd-bench';
export const PEER_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'go', 'bin', 'memberlist-peer');

/**
 * memberlist-peer flags carrying meshd's GossipConfig, field by field (the documented mapping):
 * probeIntervalMs→ProbeInterval, probeTimeoutMs→ProbeTimeout, indirectChecks→IndirectChecks,
 * retransmitMult→RetransmitMult, suspicionMult→SuspicionMult, suspicionMaxTimeoutMult→SuspicionMaxTimeoutMult,
 * gossipIntervalMs→GossipInterval, gossipNodes→GossipNodes, gossipToTheDeadMs→GossipToTheDeadTime,
 * pushPullIntervalMs→PushPullInterval (both scale it up above 32 members), awarenessMaxMultiplier→
 * AwarenessMaxMultiplier, tcpTimeoutMs→TCPTimeout, maxPacketBytes→UDPBufferSize, tcpFallback→!DisableTcpPings.
 * Not mapped (no memberlist equivalent): deadNodeReclaimMs, tombstoneReapMs, reconnectIntervalMs,
 * maxPushPullBytes, maxBroadcastQueue.
 */
export function memberlistFlags(c: GossipConfig): string[] {
  const m: Array<[string, number]> = [
    ['probe-interval-ms', c.probeIntervalMs], ['probe-timeout-ms', c.probeTimeoutMs], ['indirect-checks', c.indirectChecks],
    ['retransmit-mult', c.retransmitMult], ['suspicion-mult', c.suspicionMult], ['suspicion-max-timeout-mult', c.suspicionMaxTimeoutMult],
    ['gossip-interval-ms', c.gossipIntervalMs], ['gossip-nodes', c.gossipNodes], ['gossip-to-the-dead-ms', c.gossipToTheDeadMs],
    ['push-pull-interval-ms', c.pushPullIntervalMs], ['awareness-max-multiplier', c.awarenessMaxMultiplier],
    ['tcp-timeout-ms', c.tcpTimeoutMs], ['udp-buffer-size', c.maxPacketBytes], ['tcp-fallback', c.tcpFallback],
  ];
  return m.map(([k, v]) => `-${k}=${v}`);
}

/**
 * The rest window and the settle wait before it, for a cluster of n: both kinds scale their push-pull interval
 * above 32 members (formulas.ts pushPullScale, memberlist's pushPullScale: 10 s at 64 with the local preset's
 * 5 s), and each member push-pulls once per scaled interval with a phase set at start. A window shorter than
 * one scaled interval counts a phase-dependent share of the push-pulls: at N=64 a 5.5 s window saw 0.2 TCP
 * connections/s per member in one round and 0.02/s in the next (1,570 vs 871 B/s wire tx, spread 1.88×). So
 * the window is a whole scaled interval at least (`restMs` when longer), and the settle wait one scaled
 * interval (2–20 s), so the first periodic push-pulls have started before the window opens.
 */
export function restTiming(restMs: number, pushPullIntervalMs: number, n: number): { settleMs: number; windowMs: number } {
  const period = pushPullScale(pushPullIntervalMs, n);
  return { settleMs: Math.max(2000, Math.min(period, 20_000)), windowMs: Math.max(restMs, period) };
}

/** Seeds of a plan node, re-pointed at another port (memberlist listens on 7947). */
export function seedsOnPort(seeds: readonly string[], port: number): string[] {
  return seeds.map((s) => `${s.slice(0, s.lastIndexOf(':'))}:${port}`);
}

/** meshd's table API as the bench expects the lead to expose it (one place to adjust). */
export const MESHD_TABLE = { network: 'bench', table: 'bench' } as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NetnsCluster {
  readonly killed = new Set<string>();
  readonly stopped = new Set<string>();
  private readonly clients = new Map<string, ApiClient>();

  private constructor(readonly opts: ClusterOptions, readonly nodes: ClusterNode[]) {
    for (const n of nodes) this.clients.set(n.name, new ApiClient({ socketPath: n.sock, timeoutMs: 3000 }));
  }

  get kind(): PeerKind {
    return this.opts.kind;
  }

  /** Starts the cluster; on any failure everything already made is removed before the error propagates. */
  static async start(opts: ClusterOptions): Promise<NetnsCluster> {
    const progress = opts.onProgress ?? (() => undefined);
    await removeStale(opts.exec, opts.lab);
    const plan = planLab(opts.lab, opts.nodes);
    let cluster: NetnsCluster | undefined;
    try {
      if (opts.kind === 'meshd') {
        progress(`${opts.lab}: netctl lab up --nodes ${opts.nodes} (meshd, preset ${opts.preset})`);
        const s = await labUp(opts.exec, { name: opts.lab, nodes: opts.nodes, gossipPreset: opts.preset, logLevel: 'warn', readyTimeoutMs: 60_000, encrypt: opts.encrypt !== false });
        cluster = new NetnsCluster(opts, s.nodes.map((n) => ({ ...n, sock: n.socket })));
      } else {
        if (!existsSync(PEER_BIN)) throw new MeshError('MESHD_NOT_FOUND', `${PEER_BIN} missing: run native-scripts/build-memberlist-peer.sh`);
        progress(`${opts.lab}: ${opts.nodes} lab namespaces + memberlist-peer on :${MEMBERLIST_PORT}`);
        await createNamespaces(opts.exec, opts.lab, plan);
        const dir = join(BENCH_RUN_DIR, opts.lab);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        if (opts.encrypt !== false) writeFileSync(join(dir, 'gossip.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
        const nodes: ClusterNode[] = plan.map((n) => ({ ...n, pid: null, sock: join(dir, `${n.name}.sock`) }));
        cluster = new NetnsCluster(opts, nodes);
        for (const n of nodes) n.pid = cluster.spawnPeer(n);
      }
      await cluster.waitConverged(90_000);
      progress(`${opts.lab}: ${opts.nodes} members alive in every view`);
      return cluster;
    } catch (e) {
      if (cluster) await cluster.stop();
      else await removeStale(opts.exec, opts.lab);
      throw e;
    }
  }

  private spawnPeer(n: ClusterNode): number {
    const log = join(BENCH_RUN_DIR, this.opts.lab, `${n.name}.log`);
    const args = [
      '-name', n.name, '-bind', n.underlay, '-port', String(MEMBERLIST_PORT), '-sock', n.sock, '-preset', this.opts.preset,
      ...memberlistFlags(this.opts.config),
    ];
    if (this.opts.encrypt !== false) args.push('-key-file', join(BENCH_RUN_DIR, this.opts.lab, 'gossip.key'));
    const seeds = seedsOnPort(n.seeds, MEMBERLIST_PORT);
    if (seeds.length) args.push('-join', seeds.join(','));
    const fd = openSync(log, 'a');
    // `ip netns exec` execs the program: the pid we get is memberlist-peer's own
    const child = spawn('ip', ['netns', 'exec', n.netns, PEER_BIN, ...args], { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    if (!child.pid) throw new MeshError('MESHD_EXEC_FAILED', `could not start memberlist-peer for ${n.name}`);
    return child.pid;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no node ${name} in ${this.opts.lab}`);
    return n;
  }

  /** Members neither killed nor stopped: the ones whose views are queried. */
  responsive(): ClusterNode[] {
    return this.nodes.filter((n) => !this.killed.has(n.name) && !this.stopped.has(n.name));
  }

  private client(name: string): ApiClient {
    return this.clients.get(name)!;
  }

  async members(name: string): Promise<MemberRow[]> {
    const path = this.kind === 'meshd' ? '/v1/gossip/members' : '/members';
    const rows = await this.client(name).call<MemberRow[]>('GET', path);
    return rows.map((r) => ({ name: r.name, addr: r.addr, state: r.state, incarnation: r.incarnation ?? null }));
  }

  async metrics(name: string): Promise<PeerMetrics> {
    return this.client(name).call<PeerMetrics>('GET', this.kind === 'meshd' ? '/v1/gossip/metrics' : '/metrics');
  }

  /**
   * Makes every member ready to receive a replicated write and waits until every view agrees (meshd: each
   * agent joins the bench network, since a node only receives tables of networks it joined, and the
   * network's node list must reach everyone; memberlist: nothing to do).
   */
  async prepareBroadcast(timeoutMs = 30_000): Promise<void> {
    if (this.kind === 'memberlist') return;
    const net = encodeURIComponent(MESHD_TABLE.network);
    await Promise.all(this.responsive().map((n) => this.client(n.name).call('POST', `/v1/gossip/networks/${net}`)));
    const want = this.responsive().map((n) => n.name);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dumps = await Promise.all(want.map((n) => this.tables(n).catch(() => undefined)));
      if (dumps.every((d) => d && want.every((w) => d.nodes.includes(w)))) return;
      if (Date.now() > deadline) throw new MeshError('MESHD_NOT_READY', `${this.opts.lab}: network ${MESHD_TABLE.network} membership not converged after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  private async tables(name: string): Promise<{ nodes: string[]; entries: Array<{ table: string; key: string; value: string }> }> {
    const dump = await this.client(name).call<Array<{ network: string; nodes: string[]; entries: Array<{ table: string; key: string; value: string }> }>>(
      'GET', `/v1/gossip/tables?network=${encodeURIComponent(MESHD_TABLE.network)}`,
    );
    return dump.find((d) => d.network === MESHD_TABLE.network) ?? { nodes: [], entries: [] };
  }

  /** A replicated write originated on `name`: meshd table write / memberlist user broadcast. */
  async broadcast(name: string, key: string, value: string): Promise<void> {
    if (this.kind === 'meshd') await this.client(name).call('POST', '/v1/gossip/tables', { ...MESHD_TABLE, key, value });
    else await this.client(name).call('POST', '/broadcast', { key, value });
  }

  /** The value `name` holds for `key`, or null. */
  async read(name: string, key: string): Promise<string | null> {
    if (this.kind === 'meshd') {
      const t = await this.tables(name);
      return t.entries.find((e) => e.table === MESHD_TABLE.table && e.key === key)?.value ?? null;
    }
    const r = await this.client(name).call<{ value: string | null }>('GET', `/kv?key=${encodeURIComponent(key)}`);
    return r.value;
  }

  /** SIGKILL / SIGSTOP / SIGCONT one member and keep track of who may be queried. */
  signal(name: string, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
    const n = this.node(name);
    if (this.kind === 'meshd') labSignalAgent(this.opts.lab, name, sig);
    else process.kill(n.pid!, sig);
    if (sig === 'SIGKILL') {
      this.killed.add(name);
      this.stopped.delete(name);
    } else if (sig === 'SIGSTOP') this.stopped.add(name);
    else this.stopped.delete(name);
  }

  /** Bytes each host sent and received on its underlay NIC, from the switch side (rx of port nI = tx of nI). */
  async wireBytes(): Promise<Map<string, { tx: number; rx: number }>> {
    const out = await this.opts.exec.check('ip', ['-n', switchNs(this.opts.lab), '-s', '-j', 'link', 'show']);
    const links = JSON.parse(out) as Array<{ ifname: string; stats64?: { rx: { bytes: number }; tx: { bytes: number } } }>;
    const m = new Map<string, { tx: number; rx: number }>();
    for (const l of links) {
      const name = l.ifname.split('@')[0]!;
      if (l.stats64 && this.nodes.some((n) => n.name === name)) m.set(name, { tx: l.stats64.rx.bytes, rx: l.stats64.tx.bytes });
    }
    return m;
  }

  /** Resolves when every responsive member sees all N members alive; throws MESHD_NOT_READY after timeoutMs. */
  async waitConverged(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const want = this.nodes.map((n) => n.name);
    let last = '';
    let apiErrorSince: number | undefined;
    for (;;) {
      const views = await Promise.all(this.responsive().map((n) => this.members(n.name).catch((e: Error) => e)));
      const lagging = views.filter((v) => v instanceof Error || want.some((w) => !v.some((r) => r.name === w && r.state === 'alive')));
      if (!lagging.length) return;
      const firstErr = views.find((v): v is Error => v instanceof Error);
      last = firstErr ? firstErr.message : `${lagging.length} views incomplete`;
      // an agent that answers but has no such route (gossip not wired) will not get better by waiting
      const answered = views.find((v): v is MeshError => v instanceof MeshError && v.code !== 'MESHD_AGENT_UNREACHABLE');
      if (answered && (apiErrorSince ??= Date.now()) < Date.now() - 10_000) {
        throw new MeshError('MESHD_NOT_READY', `${this.opts.lab}: members view unavailable: ${answered.code}: ${answered.message}`);
      }
      if (this.kind === 'memberlist') this.checkPeersAlive();
      if (Date.now() > deadline) throw new MeshError('MESHD_NOT_READY', `${this.opts.lab}: not converged after ${timeoutMs} ms (${last})`);
      await sleep(200);
    }
  }

  private checkPeersAlive(): void {
    for (const n of this.nodes) {
      if (this.killed.has(n.name) || !n.pid) continue;
      try {
        process.kill(n.pid, 0);
      } catch {
        const log = join(BENCH_RUN_DIR, this.opts.lab, `${n.name}.log`);
        const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-5).join('\n') : '';
        throw new MeshError('MESHD_NOT_READY', `memberlist-peer ${n.name} exited: ${tail}`);
      }
    }
  }

  /** Removes every process, namespace and socket of this cluster; throws only if something could not be removed. */
  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (this.kind !== 'memberlist' || !n.pid) continue;
      try {
        process.kill(n.pid, 'SIGKILL'); // stopped ones too: SIGKILL needs no SIGCONT
      } catch {
        /* already gone */
      }
    }
    await removeStale(this.opts.exec, this.opts.lab);
  }
}

async function createNamespaces(exec: Exec, lab: string, plan: LabNodePlan[]): Promise<void> {
  const hosts = underlayHosts(plan);
  await exec.check('ip', ['-batch', '-'], { input: renderCreateNamespaces(lab, plan) });
  await exec.check('ip', ['-n', switchNs(lab), '-batch', '-'], { input: renderSwitch(plan) });
  await exec.check('ip', ['-n', clientNs(lab), '-batch', '-'], { input: renderHost(hosts[0]!, hosts) });
  await Promise.all(plan.map((n) => exec.check('ip', ['-n', n.netns, '-batch', '-'], { input: renderHost(hosts[n.index]!, hosts) })));
}

/** labDown (processes in the namespaces, namespaces, /run/meshd/<lab>) plus our socket directory. */
async function removeStale(exec: Exec, lab: string): Promise<void> {
  const nss = (await listNamespaces(exec)).filter((ns) => labOfNamespace(ns) === lab);
  if (nss.length || existsSync(`/run/meshd/${lab}`)) await labDown(exec, lab);
  rmSync(join(BENCH_RUN_DIR, lab), { recursive: true, force: true });
}
