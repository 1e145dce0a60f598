/**
 * The agent's gossip subsystem: drives the pure GossipNode core from real sockets and
 * timers. Every input (datagram, stream, timer, API call) is followed by a pump: drain the
 * outbox to the transport, hand events to subscribers, re-arm one timer at nextDeadline().
 */
import type { Router } from '../../adapters/api/server.js';
import { InputAwareTimer } from '../../adapters/clock.js';
import type { Logger } from '../../adapters/logger.js';
import type { AgentConfig } from '../../core/config.js';
import type { TimerClock } from '../../core/clock.js';
import { GossipNode, membersToRemember, planIsEmpty, planRejoin, resolveGossipConfig, seedsForAttempt, type GossipEvent, type RejoinPlan } from '../../core/gossip/index.js';
import { formatHostPort } from '../../core/hostport.js';
import { GossipTransport, type PacketCipher } from '../../adapters/gossip/transport.js';
import type { Subsystem } from '../agent.js';
import { registerGossipRoutes } from './routes.js';
import { MemberSnapshot } from './member-snapshot.js';

/** Longest the timer sleeps even when the core has nothing due (a safety net, not a schedule). */
const MAX_SLEEP_MS = 1000;
/** First wait between join attempts while no seed has answered; doubles per attempt up to JOIN_RETRY_MAX_MS. */
const JOIN_RETRY_MS = 1000;
const JOIN_RETRY_MAX_MS = 16_000;

/**
 * Wait before join attempt `attempt + 1` (0-based): JOIN_RETRY_MS × 2^attempt, capped, with jitter in [½, 1].
 * A fixed 1 s retry made a 64-agent lab's seeds serve 3 × 63 push-pulls a second while they were too busy to
 * answer any within the stream timeout (n1: 443 truncated streams in 3 min); backing off lets them catch up.
 * `rand` in [0, 1).
 */
export function joinRetryDelayMs(attempt: number, rand: number): number {
  const base = Math.min(JOIN_RETRY_MAX_MS, JOIN_RETRY_MS * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + rand / 2));
}
/** How long a graceful leave may take to spread before the sockets close. */
const LEAVE_GRACE_MS = 1500;

export type GossipListener = (ev: GossipEvent) => void;

export class GossipSubsystem implements Subsystem {
  readonly name = 'gossip';
  readonly core: GossipNode;
  private readonly transport: GossipTransport;
  /** The core's next deadline; judged after the input already waiting (InputAwareTimer says why). */
  private readonly ticker = new InputAwareTimer(() => {
    this.core.tick(this.clock.now());
    this.pump();
  });
  private joinTimer: NodeJS.Timeout | undefined;
  private joined = false;
  /** Who the join attempts try: configured seeds and the members remembered from the last run (core/gossip/rejoin.ts). */
  private plan: RejoinPlan = { configured: [], remembered: [] };
  private readonly snapshot: MemberSnapshot;
  /**
   * True once this agent joined the cluster (a push-pull with a seed answered), or from the start when it has
   * nobody to join through (no configured seed, no remembered member). A node with only remembered members
   * starts not joined, like one with configured seeds: the overlay/DNS sync wait holds it at most its bound
   * (agent/overlay/sync-wait.ts) when it is the first one back and nobody answers.
   */
  get hasJoined(): boolean {
    return this.joined;
  }
  private joinAttempts = 0;
  private stopped = false;
  private readonly listeners: GossipListener[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly clock: TimerClock,
    private readonly log: Logger,
    cipher?: PacketCipher,
  ) {
    this.snapshot = new MemberSnapshot({
      dataDir: config.dataDir, clock, log,
      // Not before we rejoined or see someone alive: the first node back keeps what it remembers.
      current: () => {
        const list = membersToRemember(this.core.members(), this.core.name);
        return this.joined || list.length > 0 ? list : undefined;
      },
    });
    const cfg = resolveGossipConfig(config.gossip.preset, config.gossip.overrides);
    const addr = formatHostPort(config.advertiseAddr, config.gossip.bindPort);
    this.core = new GossipNode({ name: config.nodeName, addr, config: cfg, rng: Math.random, now: clock.now() });
    this.transport = new GossipTransport(
      { bindAddr: config.advertiseAddr, port: config.gossip.bindPort, maxStreamBytes: cfg.maxPushPullBytes + 1024, maxStreamFrames: cfg.maxPushPullFrames, streamTimeoutMs: cfg.tcpTimeoutMs, cipher },
      {
        packet: (from, bytes) => {
          this.core.handlePacket(from, bytes, this.clock.now());
          this.pump();
        },
        stream: (from, frames) => {
          const reply = this.core.handleStreamRequest(from, frames, this.clock.now());
          this.pump();
          return reply;
        },
        drop: (reason) => this.core.recordDrop(reason),
      },
    );
  }

  onEvent(l: GossipListener): void {
    this.listeners.push(l);
  }

  async start(): Promise<void> {
    await this.transport.start();
    const remembered = this.snapshot.load();
    this.plan = planRejoin(this.config.gossip.seeds, remembered.map((m) => m.addr), this.core.addr, Math.random);
    if (this.plan.remembered.length > 0) {
      this.log.info({ configured: this.plan.configured.length, remembered: remembered.map((m) => m.name) }, 'joining through configured seeds and members remembered from the last run');
    }
    this.joined = planIsEmpty(this.plan);
    if (!this.joined) this.tryJoin();
    this.pump();
  }

  private tryJoin(): void {
    if (this.joined || this.stopped) return;
    // Configured seeds and this attempt's few remembered members (a bounded window, another one per retry).
    this.core.join(seedsForAttempt(this.plan, this.joinAttempts), this.clock.now());
    this.pump();
    this.joinTimer = setTimeout(() => this.tryJoin(), joinRetryDelayMs(this.joinAttempts++, Math.random()));
  }

  /** Drains the core: sends, delivers events, re-arms the timer. */
  pump(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const out of this.core.drain()) {
      if (out.kind === 'udp') this.transport.sendPacket(out.to, out.bytes);
      else {
        const id = out.id;
        void this.transport.request(out.to, out.frames).then((reply) => {
          if (this.stopped) return;
          this.core.handleStreamResponse(id, reply, this.clock.now());
          this.pump();
        });
      }
    }
    for (const ev of this.core.drainEvents()) {
      if (ev.type === 'join-ok') {
        if (!this.joined) this.log.info({ seed: ev.addr }, 'joined the cluster');
        this.joined = true;
        if (this.joinTimer) clearTimeout(this.joinTimer);
        this.snapshot.changed();
      } else if (ev.type === 'member-dead' || ev.type === 'member-left' || ev.type === 'member-reaped') {
        this.log.info({ ev }, 'membership');
        this.snapshot.changed();
      } else if (ev.type.startsWith('member-')) {
        // The snapshot write is debounced (member-snapshot.ts): a flap costs no write of its own.
        this.snapshot.changed();
        // joins, suspicions and refutations: every agent sees each one, so at info level a cluster of N logs N
        // lines per flap (a 32-node lab's profile: logging was about a tenth of an agent's CPU in a join storm)
        this.log.debug({ ev }, 'membership');
      }
      for (const l of this.listeners) {
        try {
          l(ev);
        } catch (e) {
          this.log.error({ err: e, ev }, 'gossip listener failed');
        }
      }
    }
    this.ticker.arm(Math.min(MAX_SLEEP_MS, Math.max(0, this.core.nextDeadline() - now)));
  }

  async stop(): Promise<void> {
    if (this.joinTimer) clearTimeout(this.joinTimer);
    // Before the leave: afterwards every member is still in our table, but this is the view we want to rejoin with.
    this.snapshot.flush();
    this.core.leave(this.clock.now());
    this.pump();
    const deadline = this.clock.now() + LEAVE_GRACE_MS;
    while (this.core.pendingBroadcasts() > 0 && this.clock.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.stopped = true;
    this.ticker.cancel();
    this.snapshot.cancel(); // a write armed during the leave would only repeat the flushed view
    await this.transport.stop();
  }

  /** Current time on the subsystem's clock (the routes stamp table writes with it). */
  now(): number {
    return this.clock.now();
  }

  routes(router: Router): void {
    registerGossipRoutes(router, this);
  }
}
