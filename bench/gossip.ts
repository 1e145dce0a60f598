/**
 * Gossip benchmark (issue 3): meshd's SWIM + Lifeguard agents vs hashicorp/memberlist, side by side in one
 * run, same timings (meshd's preset; memberlist-peer gets every mapped value as a flag), same lab namespaces
 * and underlay, same measuring method (the harness polls each member's view over its unix socket).
 *
 *   node dist/bench/gossip.js [--only meshd|memberlist] [--nodes 16,32] [--trials 5] [--preset local|lan]
 *
 * Figures, per kind:
 * - detection: SIGKILL one member; time until every other live member reports it dead/left or no longer lists
 *   it (median of `trials`; killed members are not restarted, so the cluster shrinks by one per trial);
 * - dissemination: a replicated write on one member (meshd: a table write, memberlist: a user broadcast
 *   through TransmitLimitedQueue, which is how Docker's NetworkDB replicates a table entry) until every other
 *   member holds it (median of 2 × trials);
 * - bytes/s per member at rest over 10 s: wire bytes (underlay NIC tx incl. IP/UDP/TCP headers, from the lab
 *   switch's port counters, identical method for both) and self-reported UDP payload bytes;
 * - false deaths: one member SIGSTOPped for 0.5, 1 and 2 s, then 3 s to settle: distinct members (other than
 *   killed ones — none yet at that point) any view ever reported dead/left, polled every 100 ms. A stop longer
 *   than the suspicion timeout (local preset, N=16: min 4 × log10(16) × 200 ms ≈ 963 ms, Lifeguard max 6×
 *   that) is a death by design for both protocols; the interesting figures are the stops below it.
 * Poll resolution: 100 ms for detection and false deaths, 25 ms for dissemination (same for both kinds).
 * Writes bench/results/gossip.json (ratio > 1 = meshd better).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../src/adapters/exec.js';
import { MeshError } from '../src/core/errors.js';
import { resolveGossipConfig, type GossipConfig } from '../src/core/gossip/config.js';
import { NetnsCluster, memberlistFlags, type PeerKind } from './lib/netns-cluster.js';
import { row, writeResults, type BenchRow } from './lib/results.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

/** Median of the finite values (mean of the middle two, rounded, for an even count); null when there are none. */
export function median(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : Math.round((v[mid - 1]! + v[mid]!) / 2);
}

/** Largest trial; null when there were no trials or one timed out (the row's note counts the timeouts). */
export function worst(xs: readonly (number | null)[] | undefined): number | null {
  if (!xs?.length || xs.some((x) => x == null)) return null;
  return Math.max(...(xs as number[]));
}

const gone = (rows: readonly { name: string; state: string }[], victim: string): boolean => {
  const r = rows.find((x) => x.name === victim);
  return !r || r.state === 'dead' || r.state === 'left';
};

/** SIGKILL `victim`; ms until every responsive member reports it dead/left/absent, or null after timeoutMs. */
async function detectTrial(c: NetnsCluster, victim: string, timeoutMs: number): Promise<number | null> {
  const observers = c.nodes.filter((n) => n.name !== victim && !c.killed.has(n.name) && !c.stopped.has(n.name)).map((n) => n.name);
  const doneAt = new Map<string, number>();
  const t0 = now();
  c.signal(victim, 'SIGKILL');
  while (doneAt.size < observers.length) {
    if (now() - t0 > timeoutMs) return null;
    await sleep(100);
    const pending = observers.filter((o) => !doneAt.has(o));
    const views = await Promise.all(pending.map((o) => c.members(o).catch(() => undefined)));
    const t = now();
    pending.forEach((o, i) => {
      const v = views[i];
      if (v && gone(v, victim)) doneAt.set(o, t);
    });
  }
  return Math.round(Math.max(...doneAt.values()) - t0);
}

/** A replicated write on `origin`; ms until every other responsive member holds it, or null after timeoutMs. */
async function broadcastTrial(c: NetnsCluster, origin: string, key: string, timeoutMs: number): Promise<number | null> {
  const value = `v-${key}`;
  const others = c.responsive().filter((n) => n.name !== origin).map((n) => n.name);
  const doneAt = new Map<string, number>();
  const t0 = now();
  await c.broadcast(origin, key, value);
  while (doneAt.size < others.length) {
    if (now() - t0 > timeoutMs) return null;
    await sleep(25);
    const pending = others.filter((o) => !doneAt.has(o));
    const got = await Promise.all(pending.map((o) => c.read(o, key).catch(() => null)));
    const t = now();
    pending.forEach((o, i) => {
      if (got[i] === value) doneAt.set(o, t);
    });
  }
  return Math.round(Math.max(...doneAt.values()) - t0);
}

interface RestFigures {
  wireTxBps: number;
  payloadOutBps: number | null;
}

/** Average bytes/s one member sends over `ms` of an idle cluster. */
async function restBytes(c: NetnsCluster, ms: number): Promise<RestFigures> {
  const names = c.responsive().map((n) => n.name);
  const sumPayload = async (): Promise<number | null> => {
    const ms = await Promise.all(names.map((n) => c.metrics(n).catch(() => undefined)));
    return ms.every((m) => m && typeof m.bytesOut === 'number') ? ms.reduce((a, m) => a + m!.bytesOut, 0) : null;
  };
  const w0 = await c.wireBytes();
  const p0 = await sumPayload();
  const t0 = now();
  await sleep(ms);
  const w1 = await c.wireBytes();
  const p1 = await sumPayload();
  const secs = (now() - t0) / 1000;
  const wire = names.reduce((a, n) => a + ((w1.get(n)?.tx ?? 0) - (w0.get(n)?.tx ?? 0)), 0);
  return {
    wireTxBps: Math.round(wire / names.length / secs),
    payloadOutBps: p0 == null || p1 == null ? null : Math.round((p1 - p0) / names.length / secs),
  };
}

interface FalseDeathFigures {
  /** Distinct members (none killed) that some view reported dead or left. */
  members: number;
  /** (observer, member) pairs that saw such a death. */
  pairs: number;
  /** memberlist only: NotifyLeave events counted inside the peers (exact, not polled). */
  selfReported: number | null;
  /** The stopped member was alive again in every view at the end. */
  recovered: boolean;
}

async function sumDeathsSeen(c: NetnsCluster): Promise<number | null> {
  const ms = await Promise.all(c.responsive().map((n) => c.metrics(n.name).catch(() => undefined)));
  return ms.every((m) => m && typeof m.deathsSeen === 'number') ? ms.reduce((a, m) => a + (m!.deathsSeen as number), 0) : null;
}

/** SIGSTOP `victim` for stopMs, SIGCONT, watch settleMs more; count deaths reported of unkilled members. */
async function falseDeathTrial(c: NetnsCluster, victim: string, stopMs: number, settleMs: number): Promise<FalseDeathFigures> {
  const base = await sumDeathsSeen(c);
  const deadMembers = new Set<string>();
  const pairs = new Set<string>();
  const observe = async (): Promise<void> => {
    const obs = c.responsive().map((n) => n.name);
    const views = await Promise.all(obs.map((o) => c.members(o).catch(() => undefined)));
    obs.forEach((o, i) => {
      for (const r of views[i] ?? []) {
        if ((r.state === 'dead' || r.state === 'left') && !c.killed.has(r.name)) {
          deadMembers.add(r.name);
          pairs.add(`${o}>${r.name}`);
        }
      }
    });
  };
  const t0 = now();
  c.signal(victim, 'SIGSTOP');
  const cont = sleep(stopMs).then(() => c.signal(victim, 'SIGCONT'));
  try {
    while (now() - t0 < stopMs + settleMs) {
      await observe();
      await sleep(100);
    }
  } finally {
    await cont;
  }
  const after = await sumDeathsSeen(c);
  let recovered = false;
  for (let i = 0; i < 50 && !recovered; i++) {
    const views = await Promise.all(c.responsive().map((n) => c.members(n.name).catch(() => undefined)));
    recovered = views.every((v) => v?.some((r) => r.name === victim && r.state === 'alive'));
    if (!recovered) await sleep(100);
  }
  return { members: deadMembers.size, pairs: pairs.size, selfReported: base == null || after == null ? null : after - base, recovered };
}

interface KindFigures {
  detectMs: Record<number, (number | null)[]>;
  broadcastMs: Record<number, (number | null)[]>;
  rest: Record<number, RestFigures>;
  falseDeaths: Record<number, FalseDeathFigures>;
  errors: string[];
}

interface Params {
  sizes: number[];
  trials: number;
  preset: 'local' | 'lan';
  config: GossipConfig;
  stopsMs: number[];
}

async function runKind(kind: PeerKind, p: Params, hold: { cluster?: NetnsCluster }): Promise<KindFigures> {
  const f: KindFigures = { detectMs: {}, broadcastMs: {}, rest: {}, falseDeaths: {}, errors: [] };
  for (const n of p.sizes) {
    const lab = `gb${kind === 'meshd' ? 'md' : 'ml'}${n}`;
    const log = (m: string): void => void process.stderr.write(`[gossip ${kind} N=${n}] ${m}\n`);
    let c: NetnsCluster | undefined;
    try {
      c = await NetnsCluster.start({ kind, lab, nodes: n, preset: p.preset, config: p.config, exec: realExec, onProgress: log });
      hold.cluster = c;
      await sleep(2000);
      f.rest[n] = await restBytes(c, 10_000);
      log(`at rest: ${f.rest[n].wireTxBps} B/s wire tx, ${f.rest[n].payloadOutBps ?? '-'} B/s payload per member`);

      try {
        await c.prepareBroadcast();
        f.broadcastMs[n] = [];
        // writes are cheap and noisier than detection: twice the trials, origins n1, n2, ...
        for (let t = 0; t < 2 * p.trials; t++) {
          f.broadcastMs[n].push(await broadcastTrial(c, `n${1 + (t % n)}`, `k${n}-${t}`, 10_000));
          await sleep(300);
        }
        log(`dissemination ms: ${f.broadcastMs[n].map((x) => (x == null ? 'timeout' : x.toFixed(0))).join(' ')}`);
      } catch (e) {
        f.errors.push(`N=${n} dissemination: ${(e as Error).message}`);
        log(`dissemination skipped: ${(e as Error).message}`);
      }

      if (n === p.sizes[0]) {
        for (const [i, stopMs] of p.stopsMs.entries()) {
          f.falseDeaths[stopMs] = await falseDeathTrial(c, `n${5 + i}`, stopMs, 3000);
          log(`SIGSTOP ${stopMs} ms: ${JSON.stringify(f.falseDeaths[stopMs])}`);
          await sleep(1000);
        }
      }

      f.detectMs[n] = [];
      for (let t = 0; t < p.trials; t++) {
        f.detectMs[n].push(await detectTrial(c, `n${n - t}`, 30_000));
        await sleep(1000);
      }
      log(`detection ms: ${f.detectMs[n].map((x) => (x == null ? 'timeout' : x.toFixed(0))).join(' ')}`);
    } catch (e) {
      f.errors.push(`N=${n}: ${(e as Error).message}`);
      log(`failed: ${(e as Error).message}`);
    } finally {
      hold.cluster = undefined;
      if (c) await c.stop();
    }
  }
  return f;
}

function parseArgs(argv: string[]): { only?: PeerKind; sizes: number[]; trials: number; preset: 'local' | 'lan' } {
  const get = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = get('--only');
  if (only && only !== 'meshd' && only !== 'memberlist') throw new MeshError('MESHD_BAD_ARGUMENT', `--only meshd|memberlist, got ${only}`);
  const sizes = (get('--nodes') ?? '16,32').split(',').map(Number);
  if (sizes.some((s) => !Number.isInteger(s) || s < 8 || s > 250)) throw new MeshError('MESHD_BAD_ARGUMENT', '--nodes: comma list of 8..250');
  const trials = Number(get('--trials') ?? 5);
  if (!Number.isInteger(trials) || trials < 1 || trials > 8) throw new MeshError('MESHD_BAD_ARGUMENT', '--trials: 1..8');
  const preset = get('--preset') ?? 'local';
  if (preset !== 'local' && preset !== 'lan') throw new MeshError('MESHD_BAD_ARGUMENT', '--preset local|lan');
  return { ...(only ? { only: only as PeerKind } : {}), sizes, trials, preset };
}

function buildPeer(): void {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native-scripts', 'build-memberlist-peer.sh');
  const r = spawnSync('sh', [script], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new MeshError('MESHD_EXEC_FAILED', `${script} failed (exit ${r.status})`);
}

function rows(p: Params, ours: KindFigures | undefined, peer: KindFigures | undefined): BenchRow[] {
  const PEER = 'memberlist';
  const oursNote = ours ? (ours.errors.length ? `meshd: ${ours.errors.join('; ')}` : undefined) : 'meshd not run';
  const peerNote = peer?.errors.length ? `memberlist: ${peer.errors.join('; ')}` : undefined;
  const note = [oursNote, peerNote].filter(Boolean).join(' | ') || undefined;
  // row() wants a number for ours: a missing figure is NaN, which JSON writes as null
  const r = (metric: string, unit: string, o: number | null | undefined, q: number | null | undefined, better: 'lower' | 'higher', extra?: string): BenchRow =>
    row(metric, unit, o ?? Number.NaN, q ?? null, PEER, better, [extra, o == null || q == null ? note : undefined].filter(Boolean).join(' ') || undefined);
  const trialsNote = (f: KindFigures | undefined, m: Record<number, (number | null)[]> | undefined, n: number): string | undefined => {
    const t = m?.[n]?.filter((x) => x == null).length ?? 0;
    return f && t ? `${f === ours ? 'meshd' : 'memberlist'}: ${t} timeouts` : undefined;
  };
  const out: BenchRow[] = [];
  for (const n of p.sizes) {
    const tn = [trialsNote(ours, ours?.detectMs, n), trialsNote(peer, peer?.detectMs, n)].filter(Boolean).join(', ');
    out.push(r(`detect SIGKILLed member, N=${n} (median of ${p.trials})`, 'ms', median(ours?.detectMs[n] ?? []), median(peer?.detectMs[n] ?? []), 'lower', tn || undefined));
  }
  for (const n of p.sizes) {
    const tn = [trialsNote(ours, ours?.broadcastMs, n), trialsNote(peer, peer?.broadcastMs, n)].filter(Boolean).join(', ') || undefined;
    out.push(r(`write reaches all members, N=${n} (median of ${2 * p.trials})`, 'ms', median(ours?.broadcastMs[n] ?? []), median(peer?.broadcastMs[n] ?? []), 'lower', tn));
    // the tail: a write the piggyback budget missed somewhere waits for push-pull (pushPullIntervalMs)
    out.push(r(`write reaches all members, N=${n} (worst of ${2 * p.trials})`, 'ms', worst(ours?.broadcastMs[n]), worst(peer?.broadcastMs[n]), 'lower', tn));
  }
  for (const n of p.sizes) {
    out.push(r(`bytes/s per member at rest, wire tx, N=${n}`, 'B/s', ours?.rest[n]?.wireTxBps, peer?.rest[n]?.wireTxBps, 'lower'));
    out.push(r(`bytes/s per member at rest, UDP payload out, N=${n}`, 'B/s', ours?.rest[n]?.payloadOutBps, peer?.rest[n]?.payloadOutBps, 'lower'));
  }
  for (const s of p.stopsMs) {
    const o = ours?.falseDeaths[s]?.members;
    const q = peer?.falseDeaths[s]?.members;
    // both zero is the goal; row() gives no ratio for a zero
    out.push(r(`false deaths, one member SIGSTOPped ${s} ms, N=${p.sizes[0]}`, 'members', o, q, 'lower'));
  }
  return out;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const config = resolveGossipConfig(a.preset);
  const p: Params = { sizes: a.sizes, trials: a.trials, preset: a.preset, config, stopsMs: [500, 1000, 2000] };
  const hold: { cluster?: NetnsCluster } = {};
  const onSignal = (): void => {
    process.stderr.write('gossip bench: interrupted, tearing down\n');
    void (hold.cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = now();
  let peer: KindFigures | undefined;
  let ours: KindFigures | undefined;
  if (a.only !== 'meshd') {
    buildPeer();
    peer = await runKind('memberlist', p, hold);
  }
  if (a.only !== 'memberlist') ours = await runKind('meshd', p, hold);
  writeResults('gossip', rows(p, ours, peer), {
    params: { sizes: p.sizes, trials: p.trials, preset: p.preset, stopsMs: p.stopsMs, config, memberlistFlags: memberlistFlags(config) },
    method: 'views polled over each member\'s unix socket: 100 ms (detection, false deaths), 25 ms (dissemination); wire bytes = lab switch port counters',
    raw: { meshd: ours ?? null, memberlist: peer ?? null },
    durationS: Math.round((now() - started) / 1000),
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`gossip bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
