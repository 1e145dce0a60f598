/**
 * GossipNode: the one facade over the SWIM engine (membership, probes, broadcasts, push-pull) and the
 * replicated per-network tables. Pure: time and randomness are injected; I/O is the caller's
 * (see swim.ts for the driving contract: handle* → tick → drain/drainEvents).
 */
import { MeshError } from '../errors.js';
import type { Rng } from '../clock.js';
import type { GossipConfig } from './config.js';
import { Swim, type GossipEvent, type GossipMetrics, type Outgoing } from './swim.js';
import { DIRECT_FANOUT_MAX_MEMBERS, Tables } from './tables.js';
import { joinSpreadMs } from './formulas.js';
import { LIMITS, type MemberState } from './wire.js';

export type { GossipEvent, GossipMetrics, Outgoing } from './swim.js';
export type { TableEvent, NetworkEvent } from './tables.js';
export type { MemberEvent } from './members.js';
export type { MemberState } from './wire.js';
export { GOSSIP_PRESETS, resolveGossipConfig, type GossipConfig, type GossipPreset } from './config.js';
export {
  MEMBER_SNAPSHOT_MAX, REJOIN_SEEDS_PER_ATTEMPT, decodeMemberSnapshot, encodeMemberSnapshot, membersToRemember, planIsEmpty, planRejoin, seedsForAttempt,
  type RejoinPlan, type RememberedMember,
} from './rejoin.js';

export interface MemberView {
  name: string;
  addr: string;
  state: MemberState;
  incarnation: number;
  /** When the member entered its current state (ms, the core's clock). */
  stateChangeAt: number;
  /** Only on our own row: Lifeguard local health score (0 = healthy; timeouts × (score+1)). */
  health?: number;
}

export interface GossipNodeOptions {
  name: string;
  /** Our advertised "ip:port" (UDP and TCP). */
  addr: string;
  config: GossipConfig;
  rng: Rng;
  now: number;
}

const utf8 = new TextEncoder();

export class GossipNode {
  private readonly swim: Swim;
  private readonly tables: Tables;

  constructor(o: GossipNodeOptions) {
    const nameLen = utf8.encode(o.name).length;
    if (nameLen === 0 || nameLen > LIMITS.name) throw new MeshError('MESHD_BAD_ARGUMENT', `node name must be 1..${LIMITS.name} bytes`);
    if (utf8.encode(o.addr).length > LIMITS.addr || o.addr.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `addr must be 1..${LIMITS.addr} bytes`);
    // Tables and the engine call each other; the holder breaks the construction cycle.
    const ref: { swim?: Swim } = {};
    const tables = new Tables(o.config, o.name, {
      broadcast: (b) => ref.swim!.broadcast(b),
      emitTable: (ev) => ref.swim!.emit(ev),
      memberState: (n) => ref.swim!.members.byName.get(n)?.state,
      requestSync: (net) => {
        const peers = tables.networkNodes(net).filter((n) => n !== o.name && ref.swim!.members.byName.get(n)?.state === 'alive');
        const pick = peers[Math.floor(o.rng() * peers.length)];
        if (pick) ref.swim!.syncWith(pick);
      },
      sendDirect: (node, msgs) => ref.swim!.sendDirect(node, msgs),
      syncWith: (node) => ref.swim!.syncWith(node),
      sendDirectAll: (bytes) => {
        const sw = ref.swim!;
        if (sw.members.liveCount() > DIRECT_FANOUT_MAX_MEMBERS) return;
        for (const m of sw.members.byName.values()) if (m.state === 'alive' && m.name !== o.name) sw.sendDirect(m.name, [bytes]);
      },
      joinSpreadMs: () => joinSpreadMs(ref.swim!.retransmits(), o.config.gossipIntervalMs),
    });
    const swim = new Swim(o.config, o.name, o.addr, o.rng, {
      snapshot: () => tables.snapshot(),
      merge: (s, now) => tables.merge(s, now),
      applyBroadcast: (m, now) => (m.type === 'table' ? tables.applyEntry(m, now, true) : tables.applyNetwork(m, now, true)),
      memberDown: (n) => tables.memberDown(n),
      inNetwork: (node, net) => tables.joined(net, node),
      reap: (now) => tables.reap(now),
      networkPeer: (rng) => {
        const nets = tables.myNetworks();
        const net = nets[Math.floor(rng() * nets.length)];
        const peers = net === undefined ? [] : tables.networkNodes(net).filter((n) => n !== o.name);
        return peers[Math.floor(rng() * peers.length)];
      },
    }, o.now);
    ref.swim = swim;
    this.swim = swim;
    this.tables = tables;
  }

  get name(): string {
    return this.swim.self.name;
  }
  get addr(): string {
    return this.swim.self.addr;
  }
  get config(): GossipConfig {
    return this.swim.cfg;
  }

  // ---- driving ----
  /** A UDP datagram from `fromAddr` ("ip:port"). Malformed input is dropped and counted, never thrown. */
  handlePacket(fromAddr: string, bytes: Uint8Array, now: number): void {
    this.swim.handlePacket(fromAddr, bytes, now);
  }
  /** Server side of a stream: the request bytes in, the reply bytes out (empty = close without reply). */
  handleStreamRequest(fromAddr: string, frames: Uint8Array | readonly Uint8Array[], now: number): Uint8Array[] {
    return this.swim.streams.request(fromAddr, frames instanceof Uint8Array ? [frames] : frames, now);
  }
  /** Client side: the reply's frames to a `stream` outbox item, or null if it failed or timed out. */
  handleStreamResponse(id: number, frames: Uint8Array | readonly Uint8Array[] | null, now: number): void {
    this.swim.streams.response(id, frames instanceof Uint8Array ? [frames] : frames, now);
  }
  tick(now: number): void {
    this.swim.tick(now);
  }
  /** When tick() next has work (ms, may be ≤ now: tick at once). */
  nextDeadline(): number {
    return this.swim.nextDeadline();
  }
  drain(): Outgoing[] {
    return this.swim.drain();
  }
  drainEvents(): GossipEvent[] {
    return this.swim.events.splice(0);
  }

  // ---- membership ----
  /**
   * Push-pull with each seed (join=true); watch for 'join-ok'/'join-failed' events and retry as you see fit.
   * The seeds are remembered: until one answers (and whenever we know no live peer) the reconnect timer retries one.
   */
  join(seeds: readonly string[], now: number): number[] {
    this.swim.seeds = seeds.filter((s) => s !== this.addr);
    this.swim.seedAnswered = false;
    this.swim.tick(now);
    this.swim.members.announceSelf();
    return seeds.filter((s) => s !== this.addr).map((s) => this.swim.streams.pushPull(s, true, now));
  }
  /**
   * Adds members we already trust as alive without broadcasting them (restoring a snapshot of the last
   * known members after a restart, or building a large simulated cluster). Unknown names only.
   */
  bootstrap(list: readonly { name: string; addr: string; incarnation?: number }[], now: number): void {
    for (const m of list) {
      if (m.name !== this.name && !this.swim.members.byName.has(m.name)) this.swim.members.alive(m.incarnation ?? 0, m.name, m.addr, now, false);
    }
    this.swim.staggerPushPull(now);
  }
  /** Graceful leave: broadcasts our departure; keep driving until pendingBroadcasts() is 0 (or a timeout), then stop. */
  leave(now: number): void {
    this.swim.members.leave(now);
    for (const net of this.tables.myNetworks()) this.tables.leaveNetwork(net, now);
    this.swim.tick(now);
  }
  pendingBroadcasts(): number {
    return this.swim.queue.size;
  }
  members(): MemberView[] {
    const out: MemberView[] = [];
    for (const m of this.swim.members.byName.values()) {
      const v: MemberView = { name: m.name, addr: m.addr, state: m.state, incarnation: m.incarnation, stateChangeAt: m.stateChangeAt };
      if (m === this.swim.self) v.health = this.swim.members.health;
      out.push(v);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  member(name: string): MemberView | undefined {
    const m = this.swim.members.byName.get(name);
    return m && { name: m.name, addr: m.addr, state: m.state, incarnation: m.incarnation, stateChangeAt: m.stateChangeAt };
  }
  /** Lifeguard local health score (0 healthy .. awarenessMaxMultiplier-1). */
  health(): number {
    return this.swim.members.health;
  }
  /** Engine metrics, plus `tableBytesQueued`: bytes of table news queued for broadcast, per table (Tables.queuedBytesByTable), and join catch-ups (Tables.catchUps). */
  metrics(): GossipMetrics & { tableBytesQueued: Record<string, number>; tableCatchUps: { sent: number; messages: number; syncs: number } } {
    const m = this.swim.metrics;
    return { ...m, drops: { ...m.drops }, tableBytesQueued: { ...this.tables.queuedBytesByTable }, tableCatchUps: { ...this.tables.catchUps } };
  }
  /** Lets the adapter count drops that happen before the core (e.g. 'decrypt'). */
  recordDrop(reason: string): void {
    this.swim.drop(reason);
  }

  // ---- tables ----
  joinNetwork(network: string, now: number): void {
    this.tables.joinNetwork(network, now);
  }
  leaveNetwork(network: string, now: number): void {
    this.tables.leaveNetwork(network, now);
  }
  tableSet(network: string, table: string, key: string, value: Uint8Array, now: number): void {
    this.tables.tableSet(network, table, key, value, now);
  }
  tableDelete(network: string, table: string, key: string, now: number): boolean {
    return this.tables.tableDelete(network, table, key, now);
  }
  tableGet(network: string, table: string, key: string): { value: Uint8Array; owner: string; ltime: number } | undefined {
    return this.tables.tableGet(network, table, key);
  }
  tableEntries(network: string, table?: string): { table: string; key: string; value: Uint8Array; owner: string; ltime: number }[] {
    return this.tables.tableEntries(network, table);
  }
  networkNodes(network: string): string[] {
    return this.tables.networkNodes(network);
  }
  networks(): string[] {
    return this.tables.myNetworks();
  }
}
