/**
 * Cost curves (issue 18 §4): how one agent's cost grows with the cluster's services, with no lab.
 *
 *   node dist/bench/scale.js [--sizes 10,100,1000,10000] [--changes 200]
 *
 * For each size S, a fresh child process (clean RSS and heap) runs one agent's pure parts on synthetic table
 * events: two gossip cores (core/gossip) wired to each other in memory — `n2` owns S services × 10 endpoints on
 * network `app`, `n1` is the agent under measurement, with one local task on `app` — and n1's events feed the
 * real LB subsystem (src/agent/lb on the in-memory dataplane, i.e. core/lb's plan and nft render) and a DNS
 * registry (core/dns, fed the way src/agent/dns feeds it). Simulated time; nothing touches the kernel.
 * Figures per size:
 * - RSS and heapUsed (after gc) once n1 holds everything;
 * - push-pull size: the bytes of n2's full state that n1's join pulls (the anti-entropy round's payload),
 *   with the default gossip config: a state over maxPushPullBytes (8 MiB) goes as several frames of at
 *   most that size (frames and the largest frame are printed too);
 * - initial sync: wall time from n1's join to LB and DNS holding every endpoint;
 * - full resync: a fresh nft syncer's plan + render of all S services (what a resync after a failure costs);
 * - CPU per endpoint change: n2 flips one endpoint's state (running ↔ draining), gossips it, n1 applies it, the
 *   LB re-plans and renders its namespace, DNS updates, n1's convergence receipts (src/agent/drain/convergence.ts,
 *   asking the LB whether it programmed the version) ack it; process CPU over --changes changes / changes;
 * - idle core CPU: n1's gossip tick() over 60 simulated seconds with nothing changing (per second).
 * DNS registry size: entries (services + tasks) and the heap they take.
 * Printed with each curve's slope between successive sizes (log-log: ~0 = O(1), ~1 = O(n)) and written to
 * bench/results/scale.json. There is no external peer here: a row's `peer` is the same metric at the smallest
 * size in the same run, so `ratio` = growth (ours / peer), not "better than".
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConvergenceReceipts } from '../src/agent/drain/convergence.js';
import { LbSubsystem } from '../src/agent/lb/lb.js';
import type { GossipPort, OverlaySubsystem } from '../src/agent/overlay/overlay.js';
import { MemoryDataplane } from '../src/adapters/dataplane/memory.js';
import type { TimerClock } from '../src/core/clock.js';
import { systemClock } from '../src/adapters/clock.js';
import type { Exec } from '../src/adapters/exec.js';
import type { Logger } from '../src/adapters/logger.js';
import { DnsRegistry } from '../src/core/dns/registry.js';
import { decodeEndpoint, ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../src/core/endpoints.js';
import { GossipNode, resolveGossipConfig, type GossipEvent, type Outgoing } from '../src/core/gossip/index.js';
import { endpointKey } from '../src/core/lb/overlay-gate.js';
import { NftSyncer } from '../src/core/lb/nft-syncer.js';
import { desired, services } from './lib/lb-sync.js';
import { snapshot, writeResults, type BenchRow } from './lib/results.js';

const START = snapshot();
const EPS = 10;
const NET = 'app';
const N1 = { name: 'n1', ip: '10.99.0.1' };
const N2 = { name: 'n2', ip: '10.99.0.2' };

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const ip4 = (base: number, n: number): string => `10.${base + (n >>> 16)}.${(n >>> 8) & 255}.${n & 255}`;
const mac = (n: number): string => `02:42:${[(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

function record(s: number, e: number, state: EndpointRecord['state'] = 'running'): EndpointRecord {
  const i = s * EPS + e + 1;
  return {
    v: 1, taskId: `t${s}x${e}`, taskName: `svc${s}.${e + 1}.t${s}x${e}`, serviceId: `s${s}`, serviceName: `svc${s}`, network: NET, networkName: NET,
    ip: ip4(200, i), mac: mac(i), node: N2.name, nodeIp: N2.ip, vip: ip4(96, s + 1), endpointMode: 'vip', aliases: [],
    ports: [{ proto: 'tcp', target: 8080 }], state,
  };
}

function localRecord(): EndpointRecord {
  return {
    v: 1, taskId: 'local0', taskName: 'client.1.local0', serviceId: 'sclient', serviceName: 'client', network: NET, networkName: NET,
    ip: '10.250.0.1', mac: '02:42:0a:fa:00:01', node: N1.name, nodeIp: N1.ip, vip: '10.250.255.1', endpointMode: 'vip', aliases: [],
    ports: [{ proto: 'tcp', target: 80 }], state: 'running',
  };
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run the child with --expose-gc');
  for (let i = 0; i < 3; i++) g();
};
const heap = (): number => (gc(), process.memoryUsage().heapUsed);
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/** What one size measures (the child's stdout, one JSON line). */
interface SizeFigures {
  services: number;
  endpoints: number;
  rssMb: number;
  heapMb: number;
  pushPullBytes: number;
  pushPullFrames: number;
  largestFrameBytes: number;
  initialSyncMs: number;
  fullResyncMs: number;
  cpuPerChangeMs: number;
  idleCoreCpuMsPerS: number;
  pushPullCpuMs: number;
  dnsEntries: number;
  dnsHeapMb: number;
}

/** Two gossip cores delivering to each other in memory, on a simulated clock. */
class Pair {
  t = 1_000_000;
  private readonly byAddr = new Map<string, GossipNode>();
  pushPullBytes = 0;
  pushPullFrames = 0;
  largestFrame = 0;
  constructor(readonly a: GossipNode, readonly b: GossipNode, readonly onEvents: (evs: GossipEvent[]) => void) {
    this.byAddr.set(a.addr, a);
    this.byAddr.set(b.addr, b);
  }
  /** Delivers every queued packet and stream both ways until both outboxes are empty. */
  flush(): void {
    for (let guard = 0; guard < 1000; guard++) {
      const out: Array<[GossipNode, Outgoing]> = [];
      for (const n of [this.a, this.b]) for (const o of n.drain()) out.push([n, o]);
      this.onEvents(this.a.drainEvents());
      this.b.drainEvents();
      if (out.length === 0) return;
      for (const [from, o] of out) {
        const to = this.byAddr.get(o.to);
        if (!to) continue;
        if (o.kind === 'udp') to.handlePacket(from.addr, o.bytes, this.t);
        else {
          const reply = to.handleStreamRequest(from.addr, o.frames, this.t);
          if (from === this.a) {
            this.pushPullBytes = Math.max(this.pushPullBytes, reply.reduce((n, f) => n + f.length, 0));
            this.pushPullFrames = Math.max(this.pushPullFrames, reply.length);
            this.largestFrame = Math.max(this.largestFrame, ...reply.map((f) => f.length));
          }
          from.handleStreamResponse(o.id, reply, this.t);
        }
      }
    }
    throw new Error('pair did not quiesce');
  }
  /** Advances simulated time by `ms`, ticking both cores at their deadlines (delivering as it goes). */
  advance(ms: number, only?: GossipNode): void {
    const end = this.t + ms;
    while (this.t < end) {
      const next = Math.min(end, ...[this.a, this.b].map((n) => Math.max(this.t + 1, n.nextDeadline())));
      this.t = next;
      for (const n of only ? [only] : [this.a, this.b]) n.tick(this.t);
      this.flush();
    }
  }
}

async function measure(S: number, changes: number): Promise<SizeFigures> {
  // The agent's config (lan, default push-pull limits: the state is framed), with no periodic push-pull:
  // the rounds are measured on their own (`pushPullCpuMs`), so the idle figure is the cost between push-pulls.
  const big = { pushPullIntervalMs: 86_400_000 };
  const cfg = resolveGossipConfig('lan', big);
  // The owner's queue is kept small: its bulk load is set-up, not what is measured.
  const ownerCfg = resolveGossipConfig('lan', { ...big, maxBroadcastQueue: 64 });
  // DNS registry heap first, in the fresh process: the records into a registry of their own (kept alive).
  const recs: EndpointRecord[] = [];
  for (let s = 0; s < S; s++) for (let e = 0; e < EPS; e++) recs.push(record(s, e));
  const h0 = heap();
  const reg = new DnsRegistry();
  for (const r of recs) {
    reg.upsertTask({ name: r.taskName, network: r.networkName, service: r.serviceName, ip: r.ip, healthy: true, owner: r.node }, 0);
    reg.upsertService({ name: r.serviceName, network: r.networkName, mode: r.endpointMode, ...(r.vip ? { vip: r.vip } : {}), aliases: r.aliases }, 0);
  }
  const dnsHeapBytes = heap() - h0;
  recs.length = 0;

  const t0 = 1_000_000;
  const n1 = new GossipNode({ name: N1.name, addr: `${N1.ip}:7946`, config: cfg, rng: Math.random, now: t0 });
  const n2 = new GossipNode({ name: N2.name, addr: `${N2.ip}:7946`, config: ownerCfg, rng: Math.random, now: t0 });
  n2.joinNetwork(NET, t0);
  for (let s = 0; s < S; s++) for (let e = 0; e < EPS; e++) n2.tableSet(NET, ENDPOINT_TABLE, `t${s}x${e}`, encodeEndpoint(record(s, e)), t0);
  n2.drainEvents();
  n2.drain();

  // n1's consumers: the LB subsystem (memory dataplane) and a DNS registry fed like src/agent/dns.
  const listeners: Array<(ev: GossipEvent) => void> = [];
  const port: GossipPort = { core: n1, onEvent: (l) => listeners.push(l), pump: () => undefined };
  const programmed = new Map<string, string>();
  for (let s = 0; s < S; s++) for (let e = 0; e < EPS; e++) { const r = record(s, e); programmed.set(endpointKey(NET, r.ip), `${r.mac}@${r.nodeIp}`); }
  const overlay = { active: true, reconciledOnce: true, programmedVersion: 1, lastErrorMessage: null, programmed: () => programmed, memberIps: () => [N1.ip, N2.ip], onProgress: () => undefined };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-scale-'));
  const dp = new MemoryDataplane();
  const clock: TimerClock = systemClock;
  const lb = new LbSubsystem({
    nodeName: N1.name, underlayIp: N1.ip, prefix: 'x-', dataDir: dir, gossip: port, overlay: overlay as unknown as OverlaySubsystem,
    clock, log, exec: {} as Exec, dataplane: dp, taskNetns: (id) => `ns-${id}`, debounceMs: 0, checkMs: 3_600_000,
    onSettled: () => receipts.kick(), // as src/agent/subsystems.ts wires it
  });
  // n1's convergence receipts: every running record it holds is a candidate, acked once the LB programmed it.
  const receipts: ConvergenceReceipts = new ConvergenceReceipts({ nodeName: N1.name, gossip: port, clock, log, lbPrograms: (r) => lb.programs(r) });
  const dns = new DnsRegistry();
  const dnsFeed = (ev: GossipEvent, now: number): void => {
    if ((ev.type !== 'create' && ev.type !== 'update') || ev.table !== ENDPOINT_TABLE) return;
    const d = decodeEndpoint(ev.value);
    if (!d.ok) throw new Error(`bad record ${ev.key}`);
    const r = d.record;
    dns.upsertTask({ name: r.taskName, network: r.networkName, service: r.serviceName, ip: r.ip, healthy: r.state === 'running', owner: ev.owner }, now);
    dns.upsertService({ name: r.serviceName, network: r.networkName, mode: r.endpointMode, ...(r.vip ? { vip: r.vip } : {}), aliases: r.aliases }, now);
  };
  let pendingDns: GossipEvent[] = [];
  const pair = new Pair(n1, n2, (evs) => {
    for (const ev of evs) {
      for (const l of listeners) l(ev);
      pendingDns.push(ev);
    }
  });
  const feedDns = (): void => {
    for (const ev of pendingDns) dnsFeed(ev, pair.t);
    pendingDns = [];
  };
  const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
  await lb.start();
  await receipts.start();
  n1.joinNetwork(NET, pair.t);
  n1.tableSet(NET, ENDPOINT_TABLE, 'local0', encodeEndpoint(localRecord()), pair.t);
  pair.flush();
  feedDns();
  await lb.idle();

  // Initial sync: n1 joins n2 (push-pull of n2's full state), LB and DNS take every endpoint.
  const s0 = performance.now();
  n1.join([n2.addr], pair.t);
  pair.flush();
  const lbEvents = pendingDns.length;
  feedDns();
  await lb.idle();
  const initialSyncMs = performance.now() - s0;
  if (lbEvents < S * EPS) throw new Error(`n1 got ${lbEvents} table events, expected ≥ ${S * EPS}`);
  const applied = (await dp.readKernel({ netns: 'ns-local0' })).frontends.length;
  if (applied < S) throw new Error(`LB programmed ${applied} frontends, expected ≥ ${S}`);

  gc();
  const mem = process.memoryUsage();

  // Full resync: a fresh syncer plans and renders all S services.
  const want = desired(services(S));
  const fr: number[] = [];
  for (let i = 0; i < 3; i++) {
    const f0 = performance.now();
    const p = new NftSyncer().plan(want);
    if (!p.nft) throw new Error('empty full plan');
    fr.push(performance.now() - f0);
  }
  fr.sort((a, b) => a - b);

  // Endpoint changes: n2 flips one endpoint's state, gossips it; n1 applies; LB and DNS follow.
  const change = async (i: number): Promise<void> => {
    const s = (i * 7919) % S;
    const e = i % EPS;
    const state = Math.floor(i / EPS) % 2 === 0 ? 'draining' : 'running';
    n2.tableSet(NET, ENDPOINT_TABLE, `t${s}x${e}`, encodeEndpoint(record(s, e, state)), pair.t);
    pair.advance(cfg.gossipIntervalMs, n2);
    feedDns();
    await lb.idle();
    await turn(); // the receipts' evaluation (marked after the table event and the LB's apply)
    pair.flush();
  };
  for (let i = 0; i < 20; i++) await change(i); // warm-up (JIT)
  const c0 = cpuMs();
  for (let i = 20; i < 20 + changes; i++) await change(i);
  const cpuPerChangeMs = (cpuMs() - c0) / changes;

  // Idle: 60 simulated seconds of both cores ticking (probes, acks, reaps), nothing changing.
  const i0 = cpuMs();
  pair.advance(60_000);
  const idleCoreCpuMsPerS = (cpuMs() - i0) / 60;

  // One push-pull round (n1 asks n2 for its full state and merges it; nothing new): O(state) by nature.
  const p0 = cpuMs();
  n1.join([n2.addr], pair.t);
  pair.flush();
  const pushPullCpuMs = cpuMs() - p0;
  feedDns();
  await lb.idle();

  if (reg.size() + 2 !== dns.size()) throw new Error(`registry sizes differ: ${reg.size()} + the local task and service vs ${dns.size()}`);

  await receipts.stop();
  await lb.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    services: S, endpoints: S * EPS, rssMb: mem.rss / 2 ** 20, heapMb: mem.heapUsed / 2 ** 20, pushPullBytes: pair.pushPullBytes, pushPullFrames: pair.pushPullFrames, largestFrameBytes: pair.largestFrame,
    initialSyncMs, fullResyncMs: fr[1]!, cpuPerChangeMs, idleCoreCpuMsPerS, pushPullCpuMs, dnsEntries: dns.size(), dnsHeapMb: dnsHeapBytes / 2 ** 20,
  };
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** log-log slope between successive sizes: ~0 flat (O(1)), ~1 linear (O(n)). */
export function slopes(sizes: readonly number[], ys: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < sizes.length; i++) out.push(ys[i]! > 0 && ys[i - 1]! > 0 ? r3(Math.log(ys[i]! / ys[i - 1]!) / Math.log(sizes[i]! / sizes[i - 1]!)) : NaN);
  return out;
}

/** O(1) / O(log n) / O(n) … read off the steepest slope above the first decade (the first is warm-up noise). */
export function order(sl: readonly number[]): string {
  const s = Math.max(...sl.slice(1).filter((x) => Number.isFinite(x)), sl[0] ?? 0);
  return s < 0.25 ? 'O(1)' : s < 0.75 ? 'sublinear' : s < 1.25 ? 'O(n)' : 'superlinear';
}

const METRICS: Array<{ key: keyof SizeFigures; metric: string; unit: string; scale?: number }> = [
  { key: 'rssMb', metric: 'RSS', unit: 'MiB' },
  { key: 'heapMb', metric: 'heap used', unit: 'MiB' },
  { key: 'cpuPerChangeMs', metric: 'CPU per endpoint change', unit: 'ms' },
  { key: 'initialSyncMs', metric: 'initial sync (join push-pull → LB + DNS)', unit: 'ms' },
  { key: 'fullResyncMs', metric: 'full resync (LB plan + nft render)', unit: 'ms' },
  { key: 'pushPullBytes', metric: 'gossip push-pull size', unit: 'KiB', scale: 1 / 1024 },
  { key: 'pushPullFrames', metric: 'gossip push-pull frames (≤ 8 MiB each)', unit: 'frames' },
  { key: 'largestFrameBytes', metric: 'gossip push-pull largest frame', unit: 'KiB', scale: 1 / 1024 },
  { key: 'idleCoreCpuMsPerS', metric: 'idle gossip CPU between push-pulls (2 cores)', unit: 'ms/s' },
  { key: 'pushPullCpuMs', metric: 'CPU of one push-pull round (both sides)', unit: 'ms' },
  { key: 'dnsEntries', metric: 'DNS registry entries', unit: 'entries' },
  { key: 'dnsHeapMb', metric: 'DNS registry heap', unit: 'MiB' },
];

async function parent(): Promise<void> {
  const sizes = arg('sizes', '10,100,1000,10000').split(',').map(Number);
  const changes = Number(arg('changes', '200'));
  const figs: SizeFigures[] = [];
  for (const S of sizes) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', String(S), '--changes', String(changes)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`size ${S} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as SizeFigures;
    console.error(`scale: ${S} services × ${EPS}: ${JSON.stringify(f)}`);
    figs.push(f);
  }
  const rows: BenchRow[] = [];
  const curves: Record<string, { values: number[]; slopes: number[]; order: string }> = {};
  console.log(`\nservices: ${sizes.join(' / ')} (× ${EPS} endpoints)   slope = log-log between successive sizes`);
  for (const m of METRICS) {
    const ys = figs.map((f) => (f[m.key] as number) * (m.scale ?? 1));
    const sl = slopes(sizes, ys);
    curves[m.key] = { values: ys.map(r3), slopes: sl, order: order(sl) };
    console.log(`${`${m.metric} (${m.unit})`.padEnd(48)} ${ys.map((y) => String(r3(y)).padStart(10)).join(' ')}   slopes ${sl.join(' ')}  → ${order(sl)}`);
    const base = ys[0]!;
    figs.forEach((f, i) => {
      rows.push({
        metric: `${m.metric}, ${f.services} services × ${EPS}`, unit: m.unit, ours: r3(ys[i]!), peer: r3(base), peerName: `same metric at ${sizes[0]} services (this run)`,
        ratio: base > 0 ? r3(ys[i]! / base) : null, better: 'lower',
        note: 'ratio = growth over the smallest size (ours / peer), not a comparison with another system',
      });
    });
  }
  const at1k = figs.find((f) => f.services === 1000);
  const at10k = figs.find((f) => f.services === 10000);
  const growth = at1k && at10k ? r3(at10k.cpuPerChangeMs / at1k.cpuPerChangeMs) : null;
  if (growth !== null) console.log(`CPU per endpoint change, 10,000 over 1,000 services: ${growth}× (goal ≤ 1.5×: one change O(1) in the number of services)`);
  writeResults('scale', rows, {
    sizes, endpointsPerService: EPS, changesMeasured: changes, curves,
    goals: {
      rssUnder150MbAt1000: at1k ? { rssMb: r3(at1k.rssMb), ok: at1k.rssMb < 150 } : null,
      oneChangeO1: curves.cpuPerChangeMs?.order === 'O(1)',
      cpuPerChange10kOver1k: growth === null ? null : { ratio: growth, ok: growth <= 1.5 },
      pushPullWithDefaultConfig: at10k ? { frames: at10k.pushPullFrames, largestFrameBytes: at10k.largestFrameBytes, ok: at10k.largestFrameBytes <= 8 * 1024 * 1024 } : null,
    },
    method: 'one child process per size; pure parts only (two gossip cores in memory, LB subsystem on the memory dataplane, DNS registry); simulated time',
  }, { start: START });
}

if (process.argv.includes('--child')) {
  const S = Number(process.argv[process.argv.indexOf('--child') + 1]);
  void measure(S, Number(arg('changes', '200'))).then((f) => {
    console.log(JSON.stringify(f));
    process.exit(0);
  }, (e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  void parent().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
