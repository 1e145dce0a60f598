/**
 * The overlay's automatic MTU, the shell around core/overlay/mtu.ts: it probes the path MTU to
 * every peer's underlay address (adapters/netlink/pmtu.ts, one process per round), feeds the
 * round to the policy, and announces what the policy decided. Rounds run through the shared
 * ReconcileLoop (coalesced, one at a time, back-off on failure): a full round (every peer) at
 * start, every `probeIntervalMs` and on `probeNow()`; after a member joins, a partial one that
 * probes only peers whose path is not known yet (joins in a burst coalesce into one).
 *
 * Why partial and spread: every agent hears a join within a few ms of the others. With a full
 * round on each join after a fixed delay, all N agents forked a subshell and a ping per peer
 * (≈ 2N processes each, N² in a lab on one machine) in the same 100 ms; in the 16-agent gossip lab
 * that stalled 12 of 16 event loops by 150–240 ms at once — longer than the `local` preset's probe
 * timeout — and the member reachable only over TCP (whose suspicions it cannot hear to refute) was
 * declared dead (3 of 6 runs). Now a join costs each agent one ping process for the new peer, at a
 * random point in [joinDelayMs, joinDelayMs + joinSpreadMs], and periodic rounds are jittered ±10 %
 * so agents started together do not stay in step.
 *
 * A change is loud on purpose — a warn log line naming the peer whose path limits it, a counter
 * and a gauge (meshd_overlay_mtu_*), and `onChange` listeners: the overlay re-programs the
 * sandboxes' bridge/VXLAN/veths and the worker re-tunes running tasks' interfaces. An operator
 * must be able to see why the MTU of a running network just moved.
 */
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import { probePathMtu } from '../../adapters/netlink/pmtu.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import { MIN_UNDERLAY_MTU, MtuPolicy, type MtuChange, type MtuView } from '../../core/overlay/mtu.js';

export interface OverlayMtuOptions {
  /** false: no probes; the overlay MTU follows the link MTU only (the behaviour before issue 19). */
  probe: boolean;
  /** Period of the background round (ms). */
  probeIntervalMs: number;
  /** Wait per probe try (ms); ping takes fractions of a second. */
  probeTimeoutMs: number;
  /** Consecutive rounds that must allow a larger MTU before it is raised. */
  raiseAfterRounds: number;
  /** Coalescing delay after a member joined (ms). */
  joinDelayMs: number;
  /** Random extra delay after a join, 0..joinSpreadMs (ms): agents that heard the same join probe apart. */
  joinSpreadMs: number;
}

export const DEFAULT_OVERLAY_MTU: OverlayMtuOptions = {
  probe: true, probeIntervalMs: 300_000, probeTimeoutMs: 1000, raiseAfterRounds: 2, joinDelayMs: 1000, joinSpreadMs: 4000,
};

/** What `GET /v1/overlay/status` reports as `mtu` (null before start). */
export type OverlayMtuView = MtuView & { probe: boolean; failedRounds: number; lastChange: MtuChange | null };

export interface OverlayMtuDeps {
  exec: Exec;
  clock: TimerClock;
  log: Logger;
  /** Underlay addresses to probe now (live members, without this node). */
  peers(): string[];
  /** Reads the local underlay link's MTU again each round (absent: the MTU given to start() stays). */
  link?: () => Promise<number>;
  /** Test seam: the probe (default: the ping script). */
  probe?: (peers: readonly string[], max: number) => Promise<Record<string, number | null>>;
  /** Jitter source in [0, 1) (default Math.random; tests pin it). */
  random?: () => number;
  /** VXLAN overhead of this node's underlay (50 IPv4 default, 70 IPv6: model.ts vxlanOverheadOf). */
  overhead?: number;
}

/** `full`: every peer, counts towards a raise. `joined`: only peers with no known path (after joins). */
type RoundKind = 'full' | 'joined';

export class OverlayMtu {
  private policy: MtuPolicy | null = null;
  private readonly loop: ReconcileLoop<RoundKind>;
  private readonly random: () => number;
  private periodic: Timer | undefined;
  private stopped = false;
  private readonly listeners: Array<(c: MtuChange) => void> = [];
  /** Failed rounds (the probe process failed); each is logged and retried with back-off. */
  failedRounds = 0;
  lastChange: MtuChange | null = null;
  /** Rounds started (a probeNow() caller waits for one numbered above what had started when it asked). */
  private started = 0;
  private waiters: Array<{ gen: number; resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(private readonly o: OverlayMtuOptions, private readonly d: OverlayMtuDeps) {
    this.random = d.random ?? Math.random;
    this.loop = new ReconcileLoop<RoundKind>({
      clock: d.clock,
      run: (kinds) => this.round(kinds.includes('full') ? 'full' : 'joined'),
      onError: (err) => {
        this.failedRounds++;
        d.log.error({ err }, 'path-MTU probe round failed (will retry)');
      },
      config: { minBackoffMs: 5000, maxBackoffMs: Math.max(5000, o.probeIntervalMs) },
    });
  }

  /** Starts with the link MTU (what the overlay used before probes) and schedules the first round. */
  start(linkMtu: number): void {
    this.stopped = false;
    this.policy = new MtuPolicy(Math.max(MIN_UNDERLAY_MTU, linkMtu), {
      raiseAfterRounds: this.o.raiseAfterRounds, ...(this.d.overhead !== undefined ? { overhead: this.d.overhead } : {}),
    });
    if (this.o.probe) this.loop.mark('full', 0);
  }

  stop(): void {
    this.stopped = true;
    this.settle(Infinity, new MeshError('MESHD_NOT_READY', 'the overlay is stopping'));
    this.periodic?.cancel();
    this.periodic = undefined;
    void this.loop.stop();
  }

  /**
   * A member joined (or came back): probe the peers with no known path soon, at a random point of
   * the spread (joins in a burst share one round; a pending earlier mark keeps its earlier time).
   */
  memberJoined(): void {
    if (!this.o.probe || !this.policy || this.stopped) return;
    this.loop.mark('joined', this.o.joinDelayMs + Math.floor(this.random() * this.o.joinSpreadMs));
  }

  /** Effective underlay MTU (the link's until a round says otherwise; 1500 before start). */
  get underlay(): number {
    return this.policy?.underlay ?? 1500;
  }

  view(): OverlayMtuView | null {
    return this.policy ? { ...this.policy.view(), probe: this.o.probe, failedRounds: this.failedRounds, lastChange: this.lastChange } : null;
  }

  onChange(listener: (c: MtuChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Runs a round now (`POST /v1/overlay/mtu/probe`, e.g. after an operator changed the underlay) and
   * resolves when a round that started after this call has finished; rejects with its error if it failed.
   */
  probeNow(): Promise<void> {
    if (!this.policy || this.stopped) return Promise.reject(new MeshError('MESHD_NOT_READY', 'the overlay MTU prober is not running'));
    if (!this.o.probe) return Promise.reject(new MeshError('MESHD_UNSUPPORTED', 'path-MTU probes are off on this node (overlay.mtuProbe: false)'));
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ gen: this.started + 1, resolve, reject }));
    this.loop.mark('full', 0);
    return p;
  }

  /** Settles the probeNow() callers whose round (started at generation ≥ theirs) just ended. */
  private settle(gen: number, err: unknown): void {
    const due = this.waiters.filter((w) => gen >= w.gen);
    this.waiters = this.waiters.filter((w) => gen < w.gen);
    for (const w of due) if (err === undefined) w.resolve(); else w.reject(toMeshError(err));
  }

  private async round(kind: RoundKind): Promise<void> {
    if (kind === 'joined') return this.roundOnce(kind);
    const gen = ++this.started;
    try {
      await this.roundOnce(kind);
    } catch (e) {
      this.settle(gen, e);
      throw e;
    }
    this.settle(gen, undefined);
  }

  private async roundOnce(kind: RoundKind): Promise<void> {
    const policy = this.policy;
    if (!policy || this.stopped) return;
    let peers = this.d.peers();
    if (kind === 'joined') {
      const known = policy.view().paths;
      peers = peers.filter((p) => known[p] == null);
      if (peers.length === 0) return; // every path known already: no process at all
    }
    if (this.d.link && kind === 'full') {
      const link = await this.d.link();
      if (link !== policy.view().link) policy.handle({ type: 'link', mtu: Math.max(MIN_UNDERLAY_MTU, link) }, this.d.clock.now());
    }
    const max = policy.view().link;
    const results = this.d.probe
      ? await this.d.probe(peers, max)
      : await probePathMtu(this.d.exec, peers, { max, min: MIN_UNDERLAY_MTU, timeoutS: this.o.probeTimeoutMs / 1000 });
    if (this.stopped) return;
    policy.handle({ type: kind === 'full' ? 'round' : 'paths', results }, this.d.clock.now());
    if (kind === 'full') this.armPeriodic();
    for (const c of policy.drain()) {
      this.lastChange = c;
      this.d.log.warn({ from: c.overlayFrom, to: c.overlayTo, underlayFrom: c.from, underlayTo: c.to, limitedBy: c.limitedBy, peer: c.peer, paths: policy.view().paths },
        `overlay MTU changed ${c.overlayFrom} → ${c.overlayTo} (${c.limitedBy === 'path' ? `path to ${c.peer} carries ${c.to}` : `link MTU ${c.to}`}); networks without --mtu follow`);
      for (const l of this.listeners) l(c);
    }
  }

  private armPeriodic(): void {
    this.periodic?.cancel();
    if (this.stopped) return;
    // ±10 %: agents started together (a cluster brought up at once, a lab) drift apart instead of probing in step.
    const ms = Math.round(this.o.probeIntervalMs * (0.9 + 0.2 * this.random()));
    this.periodic = this.d.clock.setTimer(ms, () => {
      this.periodic = undefined;
      this.loop.mark('full', 0);
    });
  }
}
