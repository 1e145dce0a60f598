/**
 * The membership table and SWIM's merge rules (memberlist state.go aliveNode/suspectNode/deadNode):
 * incarnation numbers order news about a member; a node that hears it is suspected or dead refutes
 * by bumping its incarnation; suspicions run Lifeguard timers; dead/left members are kept for
 * deadNodeReclaimMs (for reconnects and to stop old news resurrecting them), then reaped.
 */
import type { BroadcastItem } from './broadcast.js';
import type { GossipConfig } from './config.js';
import { clampHealth, expectedConfirmations, scaleByHealth, suspicionTimeout } from './formulas.js';
import { Suspicion } from './suspicion.js';
import { encode, MAX_INCARNATION, type MemberState } from './wire.js';

export interface Member {
  readonly name: string;
  addr: string;
  incarnation: number;
  state: MemberState;
  /** When the state last changed (ms). */
  stateChangeAt: number;
}

export type MemberEventType = 'member-join' | 'member-alive' | 'member-suspect' | 'member-dead' | 'member-left' | 'member-update' | 'member-reaped';
export interface MemberEvent {
  type: MemberEventType;
  name: string;
  addr: string;
  incarnation: number;
}

/** What the membership needs from its owner. */
export interface MembershipHost {
  broadcast(item: BroadcastItem): void;
  emitMember(ev: MemberEvent): void;
  /** A member became dead or left: its table entries and network records go. */
  memberDown(name: string, now: number): void;
  /** A member was added (probe list insertion). */
  memberAdded(name: string): void;
  /** We started suspecting `m` on someone else's word: the engine may ping it directly so it can refute to us. */
  suspicionStarted(m: Member, minTimeoutMs: number): void;
  /** A dead/left member came back alive (a healed partition, a restart): worth a prompt state sync. */
  memberRevived(name: string): void;
}

export class Membership {
  readonly self: Member;
  readonly byName = new Map<string, Member>();
  private readonly suspicions = new Map<string, Suspicion>();
  private healthScore = 0;
  /** Members alive or suspect (us included), kept incrementally: the formulas need it on hot paths. */
  private live = 1;
  /** Names of dead/left members (reaping, reconnects) without scanning the whole table. */
  readonly down = new Set<string>();

  constructor(private readonly cfg: GossipConfig, name: string, addr: string, private readonly host: MembershipHost, now: number) {
    this.self = { name, addr, incarnation: 0, state: 'alive', stateChangeAt: now };
    this.byName.set(name, this.self);
  }

  /** Members counted for the formulas (everyone not dead or left, including us). */
  liveCount(): number {
    return this.live;
  }

  /** Every state change goes through here so the live count and down set stay exact. */
  private setState(m: Member, next: MemberState, now: number): void {
    const wasLive = m.state === 'alive' || m.state === 'suspect';
    const isLive = next === 'alive' || next === 'suspect';
    if (wasLive && !isLive) {
      this.live--;
      this.down.add(m.name);
    } else if (!wasLive && isLive) {
      this.live++;
      this.down.delete(m.name);
    }
    m.state = next;
    m.stateChangeAt = now;
  }

  get health(): number {
    return this.healthScore;
  }
  applyHealth(delta: number): void {
    this.healthScore = clampHealth(this.healthScore + delta, this.cfg.awarenessMaxMultiplier);
  }
  /** A timeout stretched by local health (Lifeguard LHA). */
  scale(ms: number): number {
    return scaleByHealth(ms, this.healthScore, this.cfg.awarenessMaxMultiplier);
  }

  private emit(type: MemberEventType, m: Member): void {
    this.host.emitMember({ type, name: m.name, addr: m.addr, incarnation: m.incarnation });
  }
  private send(name: string, bytes: Uint8Array, local: boolean): void {
    this.host.broadcast({ key: `m:${name}`, bytes, local });
  }

  /** Refutes a suspicion/death about us: incarnation above the accusation, broadcast alive first. */
  refute(accusedIncarnation: number): void {
    const s = this.self;
    s.incarnation = Math.min(MAX_INCARNATION, Math.max(s.incarnation, accusedIncarnation) + 1);
    this.applyHealth(1);
    this.send(s.name, encode({ type: 'alive', incarnation: s.incarnation, node: s.name, addr: s.addr }), true);
  }

  /** Announces ourselves (join, address change). */
  announceSelf(): void {
    const s = this.self;
    this.send(s.name, encode({ type: 'alive', incarnation: s.incarnation, node: s.name, addr: s.addr }), true);
  }

  /** Applies an alive message; returns true if it changed our view. `rebroadcast` false for trusted bootstrap. */
  alive(inc: number, name: string, addr: string, now: number, rebroadcast = true): boolean {
    const s = this.self;
    if (name === s.name) {
      if (s.state === 'left') return false;
      if (inc > s.incarnation || (inc === s.incarnation && addr !== s.addr)) this.refute(inc);
      return false;
    }
    const m = this.byName.get(name);
    if (!m) {
      const fresh: Member = { name, addr, incarnation: inc, state: 'alive', stateChangeAt: now };
      this.byName.set(name, fresh);
      this.live++;
      this.host.memberAdded(name);
      this.emit('member-join', fresh);
    } else {
      if (inc <= m.incarnation) return false;
      const prev = m.state;
      const moved = m.addr !== addr;
      m.incarnation = inc;
      m.addr = addr;
      this.suspicions.delete(name);
      if (prev !== 'alive') {
        this.setState(m, 'alive', now);
        this.emit(prev === 'suspect' ? 'member-alive' : 'member-join', m);
        if (prev !== 'suspect') this.host.memberRevived(name);
      } else if (moved) {
        this.emit('member-update', m);
      }
    }
    if (rebroadcast) this.send(name, encode({ type: 'alive', incarnation: inc, node: name, addr }), false);
    return true;
  }

  /** Applies a suspect message (or starts one: from = us). Returns true if it changed our view. */
  suspect(inc: number, name: string, from: string, now: number): boolean {
    const s = this.self;
    if (name === s.name) {
      if (s.state !== 'left' && inc >= s.incarnation) this.refute(inc);
      return false;
    }
    const m = this.byName.get(name);
    if (!m || inc < m.incarnation || m.state === 'dead' || m.state === 'left') return false;
    const bytes = encode({ type: 'suspect', incarnation: inc, node: name, from });
    if (m.state === 'suspect') {
      const t = this.suspicions.get(name);
      if (t && inc === t.incarnation && t.confirm(from)) {
        this.send(name, bytes, from === s.name);
        return true;
      }
      if (!t || inc <= t.incarnation) return false;
    }
    const n = this.liveCount();
    const min = suspicionTimeout(this.cfg.suspicionMult, n, this.cfg.probeIntervalMs);
    const max = this.cfg.suspicionMaxTimeoutMult * min;
    this.suspicions.set(name, new Suspicion(inc, from, now, expectedConfirmations(this.cfg.suspicionMult, n), min, max));
    m.incarnation = inc;
    if (m.state !== 'suspect') {
      this.setState(m, 'suspect', now);
      this.emit('member-suspect', m);
      if (from !== s.name) this.host.suspicionStarted(m, min);
    }
    this.send(name, bytes, from === s.name);
    return true;
  }

  /** Applies a dead (left=false) or leave (left=true) message. Returns true if it changed our view. */
  dead(inc: number, name: string, from: string, left: boolean, now: number): boolean {
    const s = this.self;
    if (name === s.name) {
      if (s.state !== 'left' && inc >= s.incarnation) this.refute(inc);
      return false;
    }
    const m = this.byName.get(name);
    if (!m || inc < m.incarnation) return false;
    const next: MemberState = left && from === name ? 'left' : 'dead';
    if (m.state === 'left' || (m.state === 'dead' && next === 'dead')) return false;
    this.suspicions.delete(name);
    m.incarnation = inc;
    this.setState(m, next, now);
    this.emit(next === 'left' ? 'member-left' : 'member-dead', m);
    this.send(name, encode({ type: 'dead', incarnation: inc, node: name, from, left: next === 'left' }), from === s.name);
    this.host.memberDown(name, now);
    return true;
  }

  /** We leave: broadcast a dead message about ourselves with from = us (memberlist Leave). */
  leave(now: number): void {
    const s = this.self;
    if (s.state === 'left') return;
    this.setState(s, 'left', now);
    this.down.delete(s.name);
    this.send(s.name, encode({ type: 'dead', incarnation: s.incarnation, node: s.name, from: s.name, left: true }), true);
  }

  /** Fires expired suspicions (declaring those members dead); returns how many fired. */
  tickSuspicions(now: number): number {
    let fired = 0;
    for (const [name, t] of [...this.suspicions]) {
      if (t.deadlineAt > now) continue;
      this.suspicions.delete(name);
      const m = this.byName.get(name);
      if (m && m.state === 'suspect' && m.incarnation === t.incarnation) {
        this.dead(m.incarnation, name, this.self.name, false, now);
        fired++;
      }
    }
    return fired;
  }
  nextSuspicionDeadline(): number {
    let d = Infinity;
    for (const t of this.suspicions.values()) d = Math.min(d, t.deadlineAt);
    return d;
  }
  suspicionOf(name: string): Suspicion | undefined {
    return this.suspicions.get(name);
  }

  /** Forgets dead/left members older than deadNodeReclaimMs. */
  reap(now: number): string[] {
    const gone: string[] = [];
    for (const name of this.down) {
      const m = this.byName.get(name);
      if (!m || now - m.stateChangeAt < this.cfg.deadNodeReclaimMs) continue;
      this.byName.delete(name);
      this.down.delete(name);
      this.emit('member-reaped', m);
      gone.push(m.name);
    }
    return gone;
  }
}

/**
 * Up to k distinct random members matching `pred`, never ourselves. Small lists are shuffled exactly; large
 * ones are rejection-sampled (bounded tries) so a gossip round costs O(k), not O(N).
 */
export function sampleMembers(names: readonly string[], ms: Membership, k: number, pred: (m: Member) => boolean, rng: () => number): Member[] {
  const out: Member[] = [];
  if (k <= 0) return out;
  if (names.length <= 64) {
    const all = names.map((n) => ms.byName.get(n)).filter((m): m is Member => !!m && m !== ms.self && pred(m));
    const uniq = [...new Set(all)];
    for (let i = 0; i < uniq.length && out.length < k; i++) {
      const j = i + Math.floor(rng() * (uniq.length - i));
      [uniq[i], uniq[j]] = [uniq[j]!, uniq[i]!];
      out.push(uniq[i]!);
    }
    return out;
  }
  const seen = new Set<string>();
  for (let tries = 0; tries < 8 * k + 16 && out.length < k; tries++) {
    const n = names[Math.floor(rng() * names.length)]!;
    if (seen.has(n)) continue;
    seen.add(n);
    const m = ms.byName.get(n);
    if (m && m !== ms.self && pred(m)) out.push(m);
  }
  return out;
}
