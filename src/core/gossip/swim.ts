/**
 * The SWIM engine (memberlist's probe/gossip/push-pull loops as a pure state machine).
 * Drive it from an event loop: feed `handlePacket` (UDP), `handleStreamRequest` (TCP server side) and
 * `handleStreamResponse` (TCP client side, for the `stream` items it put in the outbox), call `tick(now)`
 * at `nextDeadline()`, and after each call send what `drain()` returns and consume `drainEvents()`.
 */
import { BroadcastQueue, type BroadcastItem } from './broadcast.js';
import type { GossipConfig } from './config.js';
import { pushPullScale, retransmitLimit } from './formulas.js';
import { Membership, sampleMembers, type Member, type MemberEvent } from './members.js';
import { SwimStreams } from './streams.js';
import type { Rng } from '../clock.js';
import type { NetworkEvent, TableEvent } from './tables.js';
import {
  COMPOUND_HEADER, COMPOUND_PART_OVERHEAD, LIMITS, NO_SOURCE_ADDR, decodePacket, encode, encodeCompound, typeName,
  type Msg, type NetworkRecordWire, type PushPullState, type TableEntryWire,
} from './wire.js';

/**
 * Something to send. `udp`: one datagram. `stream`: open TCP to `to`, write the frames (one, or a
 * push-pull split into several: wire.ts `encodePushPull`), read the reply's frames, call
 * handleStreamResponse(id, frames|null).
 */
export type Outgoing =
  | { kind: 'udp'; to: string; bytes: Uint8Array }
  | { kind: 'stream'; id: number; to: string; frames: Uint8Array[] };

export type { GossipEvent, SwimDelegate, GossipMetrics } from './swim-types.js';
import type { GossipEvent, SwimDelegate, GossipMetrics } from './swim-types.js';

interface Probe {
  seq: number;
  target: Member;
  directDeadline: number;
  finalDeadline: number;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
  tcpOk: boolean;
}
interface Relay {
  origSeq: number;
  requester: string;
  requesterAddr: string;
  wantNack: boolean;
  deadline: number;
}

const REAP_EVERY_MS = 1000;

/**
 * Buddy pings sent at once per suspicion, in expectation, cluster-wide: each member that starts suspecting on
 * someone else's word pings the suspect with probability BUDDY_FANOUT / (live members − 2). Every member doing
 * it (the first design) sent N − 2 pings to the suspect at once: a suspect that is merely slow (a starved CPU)
 * then had N packets to process, missed more probes and was suspected again: at N = 64 that loop alone turned
 * a busy machine's lab into one that never converged (test/unit/gossip/join-storm.test.ts, CPU model).
 */
export const BUDDY_FANOUT = 3;
/**
 * Members that did not ping at once check again at a random point in this fraction of the minimum suspicion
 * timeout, and ping only if the suspicion still stands: a refutation that gossip failed to bring them is
 * fetched directly, while in the common case (the refutation spread first) nobody sends anything.
 */
export const BUDDY_LATE_WINDOW = [0.4, 0.7] as const;

/**
 * A relay nacks after 80% of the probe timeout (memberlist waits the full timeout): the prober escalates at
 * probeTimeout and gives up at probeInterval, often 2×probeTimeout, so the nack must leave early enough to land
 * before that deadline — a nack that arrives late counts as missing and wrongly lowers the prober's health.
 */
export function nackDelayMs(probeTimeoutMs: number): number {
  return Math.max(1, Math.floor(probeTimeoutMs * 0.8));
}

export class Swim {
  readonly members: Membership;
  readonly queue: BroadcastQueue;
  readonly streams: SwimStreams;
  readonly events: GossipEvent[] = [];
  readonly metrics: GossipMetrics = {
    packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, streamsIn: 0, streamsOut: 0, streamBytesIn: 0, streamBytesOut: 0, streamFailures: 0,
    probes: 0, probeFailures: 0, staleAcks: 0, indirectProbes: 0, indirectAcks: 0, tcpFallbackAcks: 0, tcpRefuteSyncs: 0, broadcastsEvicted: 0, suspicionsExpired: 0, drops: {}, bytesOutByKind: {},
  };
  private outbox: Outgoing[] = [];
  /** Member name → table news to send it directly at the next drain() (sendDirect). */
  private readonly direct = new Map<string, Uint8Array[]>();
  /** Member → the incarnation we already pushed a refutation push-pull for (tcpAck). */
  private readonly refuteSynced = new Map<string, number>();
  private probeList: string[] = [];
  private probeIdx = 0;
  private seq = 0;
  private probe: Probe | undefined;
  private readonly relays = new Map<number, Relay>();
  private nextProbeAt: number;
  private nextGossipAt: number;
  private nextPushPullAt: number;
  private nextReconnectAt: number;
  private nextReapAt: number;
  private urgentSync: string | undefined;
  private lastUrgentAt = -Infinity;
  private lastNow: number;
  private networkRound = false;
  /** Late buddy checks: suspect name → when to check and the suspected incarnation (see BUDDY_LATE_WINDOW). */
  private readonly buddyChecks = new Map<string, { at: number; incarnation: number }>();
  /** Addresses given to join(); retried by the reconnect timer while we know no live peer. */
  seeds: readonly string[] = [];
  /** A join push-pull succeeded since join() was called. */
  seedAnswered = false;

  constructor(readonly cfg: GossipConfig, name: string, addr: string, readonly rng: Rng, readonly delegate: SwimDelegate, now: number) {
    this.lastNow = now;
    this.queue = new BroadcastQueue(cfg.maxBroadcastQueue);
    this.members = new Membership(cfg, name, addr, {
      broadcast: (b) => this.queue.queue(b),
      emitMember: (ev) => this.events.push(ev),
      memberDown: (n, t) => this.delegate.memberDown(n, t),
      memberAdded: (n) => this.probeList.splice(Math.floor(this.rng() * (this.probeList.length + 1)), 0, n),
      memberRevived: (n) => this.syncWith(n),
      suspicionStarted: (m, minTimeoutMs) => this.suspicionHeard(m, minTimeoutMs),
    }, now);
    this.streams = new SwimStreams(this);
    this.nextProbeAt = now + Math.floor(rng() * cfg.probeIntervalMs);
    this.nextGossipAt = now + cfg.gossipIntervalMs;
    this.nextPushPullAt = now + Math.floor(rng() * cfg.pushPullIntervalMs);
    this.nextReconnectAt = now + Math.floor(rng() * cfg.reconnectIntervalMs);
    this.nextReapAt = now + REAP_EVERY_MS;
  }

  get self(): Member {
    return this.members.self;
  }
  drop(reason: string): void {
    this.metrics.drops[reason] = (this.metrics.drops[reason] ?? 0) + 1;
  }
  /** Counts `bytes` sent under `kind` (GossipMetrics.bytesOutByKind). */
  countOut(kind: string, bytes: number): void {
    const k = this.metrics.bytesOutByKind;
    k[kind] = (k[kind] ?? 0) + bytes;
  }
  /** Counts one outgoing UDP packet: its messages (own or broadcasts, by type) and its compound header. */
  private countPacket(own: readonly Uint8Array[], extra: readonly Uint8Array[], extraKind: string, total: number): void {
    let parts = 0;
    for (const m of own) (this.countOut(`udp:${typeName(m[1])}`, m.length), parts += m.length);
    for (const m of extra) (this.countOut(`${extraKind}:${typeName(m[1])}`, m.length), parts += m.length);
    if (total > parts) this.countOut('udp:compound', total - parts);
  }
  drain(): Outgoing[] {
    if (this.direct.size > 0) this.flushDirect();
    const o = this.outbox;
    this.outbox = [];
    return o;
  }
  emit(ev: GossipEvent): void {
    this.events.push(ev);
  }
  broadcast(item: BroadcastItem): void {
    this.queue.queue(item);
  }
  retransmits(): number {
    return retransmitLimit(this.cfg.retransmitMult, this.members.byName.size);
  }
  pushStream(id: number, to: string, frames: Uint8Array[]): void {
    this.metrics.streamsOut++;
    let n = 0;
    for (const f of frames) n += f.length;
    this.metrics.streamBytesOut += n;
    this.countOut(`stream:${typeName(frames[0]?.[1])}`, n);
    this.outbox.push({ kind: 'stream', id, to, frames });
  }

  private acceptFor(node: string | undefined): (b: BroadcastItem) => boolean {
    return (b) => b.network === undefined || (node !== undefined && this.delegate.inNetwork(node, b.network));
  }
  /** Sends one or a few messages in one UDP packet, with queued broadcasts piggybacked up to maxPacketBytes. */
  sendUdp(to: string, msg: Uint8Array | readonly Uint8Array[], toName: string | undefined): void {
    const msgs = msg instanceof Uint8Array ? [msg] : msg;
    let parts = msgs;
    if (this.queue.size > 0) {
      const own = msgs.reduce((a, m) => a + m.length + COMPOUND_PART_OVERHEAD, 0);
      const budget = this.cfg.maxPacketBytes - own - COMPOUND_HEADER - COMPOUND_PART_OVERHEAD;
      const extra = this.queue.take(budget, COMPOUND_PART_OVERHEAD, this.retransmits(), LIMITS.compoundParts - msgs.length, this.acceptFor(toName));
      if (extra.length) parts = [...msgs, ...extra];
    }
    const bytes = parts.length === 1 ? parts[0]! : encodeCompound(parts);
    this.metrics.packetsOut++;
    this.metrics.bytesOut += bytes.length;
    this.countPacket(msgs, parts === msgs ? [] : parts.slice(msgs.length), 'piggyback', bytes.length);
    this.outbox.push({ kind: 'udp', to, bytes });
  }

  /**
   * Queues `msgs` for member `name`, sent straight to it at the next drain() packed into as few UDP packets as
   * fit (maxPacketBytes, compoundParts), nothing piggybacked: table news an owner hands to each member of a
   * network itself (tables.ts fanOut, catchUp), counted as `direct:<type>`. Everything queued for one member
   * in one turn of the caller's loop shares packets. False, and nothing queued, when `name` is not an alive
   * member or one message alone does not fit a packet.
   */
  sendDirect(name: string, msgs: readonly Uint8Array[]): boolean {
    const m = this.members.byName.get(name);
    if (!m || m === this.self || m.state !== 'alive') return false;
    const room = this.cfg.maxPacketBytes - COMPOUND_HEADER - COMPOUND_PART_OVERHEAD;
    if (msgs.some((b) => b.length > room)) return false;
    const list = this.direct.get(name);
    if (list) list.push(...msgs);
    else this.direct.set(name, [...msgs]);
    return true;
  }

  /** Packs what sendDirect queued into datagrams, per member (see sendDirect). */
  private flushDirect(): void {
    const room = this.cfg.maxPacketBytes - COMPOUND_HEADER;
    for (const [name, msgs] of this.direct) {
      const m = this.members.byName.get(name);
      if (!m || m.state !== 'alive') continue;
      let batch: Uint8Array[] = [];
      let size = 0;
      const flush = (): void => {
        if (batch.length === 0) return;
        this.sendParts(m.addr, batch, 'direct');
        batch = [];
        size = 0;
      };
      for (const b of msgs) {
        if (batch.length >= LIMITS.compoundParts || size + b.length + COMPOUND_PART_OVERHEAD > room) flush();
        batch.push(b);
        size += b.length + COMPOUND_PART_OVERHEAD;
      }
      flush();
    }
    this.direct.clear();
  }

  handlePacket(from: string, bytes: Uint8Array, now: number): void {
    this.lastNow = now;
    this.metrics.packetsIn++;
    this.metrics.bytesIn += bytes?.length ?? 0;
    const d = decodePacket(bytes);
    if (!d.ok) return this.drop(d.reason);
    if (d.msg.type !== 'compound') return this.handleMsg(from, d.msg, now);
    const msgs: Msg[] = [];
    for (const part of d.msg.parts) {
      const p = decodePacket(part, false);
      if (p.ok) msgs.push(p.msg);
      else this.drop(p.reason);
    }
    // A ping that carries an accusation against us (the buddy system) gets our alive in the ack itself,
    // even when the refutation's broadcast budget is already spent on others.
    const me = this.self;
    const accused = me.state !== 'left' && msgs.some((m) => (m.type === 'suspect' || m.type === 'dead') && m.node === me.name);
    for (const m of accused ? [...msgs].sort((a, b) => Number(a.type === 'ping') - Number(b.type === 'ping')) : msgs) {
      if (accused && m.type === 'ping' && m.target === me.name) {
        const alive = encode({ type: 'alive', incarnation: me.incarnation, node: me.name, addr: me.addr });
        this.sendUdp(from, [encode({ type: 'ack', seq: m.seq }), alive], m.source);
      } else {
        this.handleMsg(from, m, now);
      }
    }
  }

  private handleMsg(from: string, m: Msg, now: number): void {
    const me = this.self;
    switch (m.type) {
      case 'ping':
        if (m.target !== me.name) return this.drop('wrong-target');
        return this.sendUdp(from, encode({ type: 'ack', seq: m.seq }), m.source);
      case 'indirect-ping': {
        if (m.target === me.name) return this.sendUdp(from, encode({ type: 'ack', seq: m.seq }), m.source);
        const seq = this.nextSeq();
        this.relays.set(seq, { origSeq: m.seq, requester: m.source, requesterAddr: from, wantNack: m.nack, deadline: now + nackDelayMs(this.cfg.probeTimeoutMs) });
        return this.sendUdp(m.targetAddr, encode({ type: 'ping', seq, target: m.target, source: me.name, sourceAddr: NO_SOURCE_ADDR }), m.target);
      }
      case 'ack': {
        const p = this.probe;
        if (p && p.seq === m.seq) {
          this.probe = undefined;
          if (!p.indirect) this.members.applyHealth(-1);
          else if (!p.tcpOk) this.metrics.indirectAcks++;
          return;
        }
        const r = this.relays.get(m.seq);
        if (r) {
          this.relays.delete(m.seq);
          return this.sendUdp(r.requesterAddr, encode({ type: 'ack', seq: r.origSeq }), r.requester);
        }
        this.metrics.staleAcks++;
        return;
      }
      case 'nack':
        if (this.probe && this.probe.seq === m.seq) this.probe.nacks++;
        return;
      case 'alive':
        this.members.alive(m.incarnation, m.node, m.addr, now);
        return;
      case 'suspect':
        this.members.suspect(m.incarnation, m.node, m.from, now);
        return;
      case 'dead':
        this.members.dead(m.incarnation, m.node, m.from, m.left, now);
        return;
      case 'table':
      case 'network':
        if (me.state !== 'left') this.delegate.applyBroadcast(m, now);
        return;
      default:
        return this.drop('bad-type');
    }
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /** Re-spreads the first push-pull over the (size-scaled) interval, after a bulk bootstrap. */
  staggerPushPull(now: number): void {
    this.nextPushPullAt = now + Math.floor(this.rng() * pushPullScale(this.cfg.pushPullIntervalMs, this.members.liveCount()));
  }

  /** Ask for a prompt push-pull with `name` (revived member, or a member of a network we just joined). */
  syncWith(name: string): void {
    if (this.lastNow - this.lastUrgentAt < this.cfg.probeIntervalMs && this.urgentSync === undefined) return;
    this.urgentSync = name;
    this.nextPushPullAt = Math.min(this.nextPushPullAt, this.lastNow);
  }

  /** Random members matching `pred`, at most k, distinct, never us. */
  sample(k: number, pred: (m: Member) => boolean): Member[] {
    return sampleMembers(this.probeList, this.members, k, pred, this.rng);
  }

  private nextProbeTarget(): Member | undefined {
    for (let tries = 0; tries <= this.probeList.length + 1; tries++) {
      if (this.probeIdx >= this.probeList.length) {
        const names = [...this.members.byName.keys()].filter((n) => n !== this.self.name);
        for (let i = names.length - 1; i > 0; i--) {
          const j = Math.floor(this.rng() * (i + 1));
          [names[i], names[j]] = [names[j]!, names[i]!];
        }
        this.probeList = names;
        this.probeIdx = 0;
        if (names.length === 0) return undefined;
      }
      const m = this.members.byName.get(this.probeList[this.probeIdx++]!);
      if (m && m !== this.self && (m.state === 'alive' || m.state === 'suspect')) return m;
    }
    return undefined;
  }

  private startProbe(now: number): void {
    this.nextProbeAt = now + this.members.scale(this.cfg.probeIntervalMs);
    const t = this.nextProbeTarget();
    if (!t) return;
    const seq = this.nextSeq();
    this.metrics.probes++;
    this.probe = {
      seq, target: t, indirect: false, expectedNacks: 0, nacks: 0, tcpOk: false,
      directDeadline: now + this.members.scale(this.cfg.probeTimeoutMs), finalDeadline: this.nextProbeAt,
    };
    const ping = encode({ type: 'ping', seq, target: t.name, source: this.self.name, sourceAddr: NO_SOURCE_ADDR });
    if (t.state !== 'suspect') return this.sendUdp(t.addr, ping, t.name);
    // Lifeguard's buddy system: tell a suspect directly, so it can refute (its ack piggybacks the alive).
    const suspect = encode({ type: 'suspect', incarnation: t.incarnation, node: t.name, from: this.self.name });
    this.sendUdp(t.addr, [ping, suspect], t.name);
  }

  /**
   * Lifeguard's buddy system, extended: when we start suspecting a member on someone else's word, we ping it
   * with the suspicion attached — at once with probability BUDDY_FANOUT / (live − 2) (about BUDDY_FANOUT pings
   * per suspicion cluster-wide), else later, only if the suspicion still stands then. A live (or just-resumed)
   * member refutes, and its ack carries the alive straight back to us (local updates go first), so a
   * refutation cannot miss a suspecter by gossip bad luck, and a suspect is not flooded with N − 2 pings at once.
   * The ack itself is not awaited (it counts as stale).
   */
  private suspicionHeard(m: Member, minTimeoutMs: number): void {
    const others = Math.max(1, this.members.liveCount() - 2);
    if (this.rng() < BUDDY_FANOUT / others) return this.buddyPing(m);
    const [lo, hi] = BUDDY_LATE_WINDOW;
    this.buddyChecks.set(m.name, { at: this.lastNow + Math.floor(minTimeoutMs * (lo + this.rng() * (hi - lo))), incarnation: m.incarnation });
  }

  private runBuddyChecks(now: number): void {
    for (const [name, c] of this.buddyChecks) {
      if (c.at > now) continue;
      this.buddyChecks.delete(name);
      const m = this.members.byName.get(name);
      if (m && m.state === 'suspect' && m.incarnation === c.incarnation) this.buddyPing(m);
    }
  }

  private buddyPing(m: Member): void {
    const me = this.self;
    const ping = encode({ type: 'ping', seq: this.nextSeq(), target: m.name, source: me.name, sourceAddr: NO_SOURCE_ADDR });
    const suspect = encode({ type: 'suspect', incarnation: m.incarnation, node: m.name, from: me.name });
    this.sendUdp(m.addr, [ping, suspect], m.name);
  }

  /** No direct ack in time: ask k others (they nack if they hear nothing) and try TCP. */
  private escalateProbe(p: Probe, now: number): void {
    p.indirect = true;
    this.metrics.indirectProbes++;
    const me = this.self;
    const helpers = this.sample(this.cfg.indirectChecks, (m) => m.state === 'alive' && m !== p.target);
    for (const h of helpers) {
      this.sendUdp(h.addr, encode({
        type: 'indirect-ping', seq: p.seq, target: p.target.name, targetAddr: p.target.addr, source: me.name, sourceAddr: NO_SOURCE_ADDR, nack: true,
      }), h.name);
    }
    p.expectedNacks = helpers.length;
    if (this.cfg.tcpFallback) {
      const ping = encode({ type: 'ping', seq: p.seq, target: p.target.name, source: me.name, sourceAddr: NO_SOURCE_ADDR });
      this.streams.open('ping', p.target.addr, [ping], now, p.seq);
    }
  }

  /**
   * Called by the stream layer when a TCP fallback ping was acked. A member that answers over TCP while we
   * suspect it (our own probe ended before the ack came — a stalled event loop — or someone else's suspicion)
   * is alive but may be unable to hear the suspicion: with its UDP blocked, neither gossip nor the buddy ping
   * reaches it, so it cannot refute and is declared dead while it answers every TCP ping (the gossip lab's
   * UDP-only case under load: all 15 others saw n14 dead 5.0 s into the block). So we push-pull with it at once:
   * our state tells it the suspicion, it refutes, and its reply carries the refutation back over TCP (memberlist
   * has no such path).
   */
  tcpAck(seq: number, addr: string): void {
    if (this.probe && this.probe.seq === seq && !this.probe.tcpOk) {
      this.probe.tcpOk = true;
      this.metrics.tcpFallbackAcks++;
    }
    for (const m of this.members.byName.values()) {
      if (m.addr !== addr) continue;
      // Once per suspicion (member × incarnation): a push-pull carries the full state, and a starved cluster
      // (many suspicions, late TCP acks) must not answer each late ack with another one.
      if (m.state === 'suspect' && this.refuteSynced.get(m.name) !== m.incarnation) {
        if (this.refuteSynced.size > 2 * this.members.byName.size) this.refuteSynced.clear();
        this.refuteSynced.set(m.name, m.incarnation);
        this.metrics.tcpRefuteSyncs++;
        this.streams.pushPull(addr, false, this.lastNow);
      }
      break;
    }
  }

  private finishProbe(p: Probe, now: number): void {
    this.probe = undefined;
    if (p.tcpOk) return; // reachable over TCP only: not a failure (memberlist warns about the network).
    this.metrics.probeFailures++;
    this.members.applyHealth(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
    const t = p.target;
    if (this.members.byName.get(t.name) === t && (t.state === 'alive' || t.state === 'suspect')) {
      this.members.suspect(t.incarnation, t.name, this.self.name, now);
    }
  }

  private gossip(): void {
    const now = this.lastNow;
    const targets = this.sample(this.cfg.gossipNodes, (m) =>
      m.state === 'alive' || m.state === 'suspect' || (m.state === 'dead' && now - m.stateChangeAt < this.cfg.gossipToTheDeadMs));
    const limit = this.retransmits();
    for (const t of targets) {
      if (this.queue.size === 0) break;
      const parts = this.queue.take(this.cfg.maxPacketBytes - COMPOUND_HEADER, COMPOUND_PART_OVERHEAD, limit, LIMITS.compoundParts, this.acceptFor(t.name), true);
      if (parts.length > 0) this.sendParts(t.addr, parts, 'gossip');
    }
  }

  /** One datagram of queued messages only (gossip round, direct hand-off): compound when several, counted under `kind`. */
  private sendParts(to: string, parts: readonly Uint8Array[], kind: string): void {
    const bytes = parts.length === 1 ? parts[0]! : encodeCompound(parts);
    this.metrics.packetsOut++;
    this.metrics.bytesOut += bytes.length;
    this.countPacket([], parts, kind, bytes.length);
    this.outbox.push({ kind: 'udp', to, bytes });
  }

  tick(now: number): void {
    this.lastNow = now;
    const left = this.self.state === 'left';
    const p = this.probe;
    if (p && !p.indirect && now >= p.directDeadline) this.escalateProbe(p, now);
    if (p && now >= p.finalDeadline) this.finishProbe(p, now);
    if (!left && now >= this.nextProbeAt) {
      if (this.probe) this.finishProbe(this.probe, now);
      this.startProbe(now);
    }
    for (const [seq, r] of this.relays) {
      if (r.deadline > now) continue;
      this.relays.delete(seq);
      if (r.wantNack) this.sendUdp(r.requesterAddr, encode({ type: 'nack', seq: r.origSeq }), r.requester);
    }
    this.streams.expire(now);
    this.metrics.suspicionsExpired += this.members.tickSuspicions(now);
    if (this.buddyChecks.size) this.runBuddyChecks(now);
    if (now >= this.nextGossipAt) {
      this.nextGossipAt = now + this.cfg.gossipIntervalMs;
      if (this.queue.size > 0) this.gossip();
    }
    if (!left && now >= this.nextPushPullAt) {
      this.nextPushPullAt = now + pushPullScale(this.cfg.pushPullIntervalMs, this.members.liveCount());
      const urgent = this.urgentSync !== undefined ? this.members.byName.get(this.urgentSync) : undefined;
      if (urgent) this.lastUrgentAt = now;
      this.urgentSync = undefined;
      // Every other round, a peer sharing one of our networks (NetworkDB's per-network bulk sync): a small
      // network in a big cluster would otherwise rarely get an anti-entropy round with anyone who stores it.
      this.networkRound = !this.networkRound;
      const peer = this.networkRound ? this.delegate.networkPeer(this.rng) : undefined;
      const netPeer = peer !== undefined ? this.members.byName.get(peer) : undefined;
      const target = urgent && urgent.state !== 'left' ? urgent
        : netPeer && netPeer.state === 'alive' ? netPeer : this.sample(1, (m) => m.state === 'alive')[0];
      if (target) this.streams.pushPull(target.addr, false, now);
    }
    if (!left && now >= this.nextReconnectAt) {
      this.nextReconnectAt = now + this.cfg.reconnectIntervalMs;
      const dead: Member[] = [];
      for (const n of this.members.down) {
        const m = this.members.byName.get(n);
        if (m && m.state === 'dead') dead.push(m);
      }
      const t = dead[Math.floor(this.rng() * dead.length)];
      if (t) this.streams.pushPull(t.addr, false, now);
      // Until a seed has answered, or when alone again (every known peer dead or gone): retry the join seeds,
      // or an island formed during a partition never merges back.
      const retry = !this.seedAnswered || this.members.liveCount() <= 1;
      const seed = retry ? this.seeds[Math.floor(this.rng() * this.seeds.length)] : undefined;
      if (seed !== undefined && seed !== t?.addr) this.streams.pushPull(seed, true, now);
    }
    if (now >= this.nextReapAt) {
      this.nextReapAt = now + REAP_EVERY_MS;
      this.members.reap(now);
      this.delegate.reap(now);
    }
    this.metrics.broadcastsEvicted = this.queue.evicted;
  }

  /** The earliest time tick() has work to do. */
  nextDeadline(): number {
    const left = this.self.state === 'left';
    let d = Math.min(this.nextReapAt, this.members.nextSuspicionDeadline(), this.streams.nextDeadline());
    if (!left) d = Math.min(d, this.nextProbeAt, this.nextPushPullAt, this.nextReconnectAt);
    if (this.queue.size > 0) d = Math.min(d, this.nextGossipAt);
    const p = this.probe;
    if (p) d = Math.min(d, p.indirect ? p.finalDeadline : p.directDeadline);
    for (const r of this.relays.values()) d = Math.min(d, r.deadline);
    for (const c of this.buddyChecks.values()) d = Math.min(d, c.at);
    return d;
  }
}
