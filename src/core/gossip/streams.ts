/**
 * Stream (TCP) exchanges of the SWIM engine: the client side (TCP fallback ping, push-pull, join) as
 * `stream` outbox items answered through `response()`, and the server side (`request()`), which answers
 * a ping with an ack and a push-pull with our own full state. Pending exchanges are forgotten after tcpTimeoutMs.
 * A stream is a list of frames: one message, or a push-pull state split into frames of at most
 * maxPushPullBytes (and at most maxPushPullFrames of them), joined strictly before anything is merged.
 */
import type { GossipConfig } from './config.js';
import type { Membership, Member } from './members.js';
import type { GossipEvent, GossipMetrics, SwimDelegate } from './swim-types.js';
import { decodePushPullFrames, encode, encodePushPull, type PushPullState } from './wire.js';

/** What the stream exchanges use of the SWIM engine (swim.ts implements it). */
export interface StreamHost {
  readonly cfg: GossipConfig;
  readonly members: Membership;
  readonly self: Member;
  readonly delegate: SwimDelegate;
  readonly metrics: GossipMetrics;
  /** Set once any seed answered a join. */
  seedAnswered: boolean;
  emit(ev: GossipEvent): void;
  drop(reason: string): void;
  /** The TCP fallback ping for probe `seq`, sent to `addr`, was acked (possibly after the probe ended). */
  tcpAck(seq: number, addr: string): void;
  pushStream(id: number, to: string, frames: Uint8Array[]): void;
  /** Counts payload bytes sent under a kind (GossipMetrics.bytesOutByKind). */
  countOut(kind: string, bytes: number): void;
}

type Kind = 'ping' | 'push-pull' | 'join';

function byteLength(frames: readonly Uint8Array[]): number {
  let n = 0;
  for (const f of frames) n += f?.length ?? 0;
  return n;
}
interface Pending {
  kind: Kind;
  to: string;
  seq: number;
  deadline: number;
}

export class SwimStreams {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly swim: StreamHost) {}

  get inFlight(): number {
    return this.pending.size;
  }

  open(kind: Kind, to: string, frames: Uint8Array[], now: number, seq = 0): number {
    const id = this.nextId++;
    this.pending.set(id, { kind, to, seq, deadline: now + this.swim.cfg.tcpTimeoutMs });
    this.swim.pushStream(id, to, frames);
    return id;
  }

  pushPull(to: string, join: boolean, now: number): number {
    return this.open(join ? 'join' : 'push-pull', to, this.frames(join), now);
  }

  /** Our full state as stream frames (several when it is over maxPushPullBytes). */
  private frames(join: boolean): Uint8Array[] {
    return encodePushPull(this.state(join), this.swim.cfg.maxPushPullBytes);
  }

  private decode(frames: readonly Uint8Array[]): ReturnType<typeof decodePushPullFrames> {
    return decodePushPullFrames(frames, this.swim.cfg.maxPushPullBytes, this.swim.cfg.maxPushPullFrames);
  }

  /** Server side: one request in (its frames), one reply out (no frame = nothing to say; close the stream). */
  request(from: string, frames: readonly Uint8Array[], now: number): Uint8Array[] {
    const s = this.swim;
    s.metrics.streamsIn++;
    s.metrics.streamBytesIn += byteLength(frames);
    const d = this.decode(frames);
    if (!d.ok) {
      s.drop(d.reason);
      return [];
    }
    const m = d.msg;
    let reply: Uint8Array[];
    if (m.type === 'ping') {
      if (m.target !== s.self.name) {
        s.drop('wrong-target');
        return [];
      }
      reply = [encode({ type: 'ack', seq: m.seq })];
    } else if (m.type === 'push-pull') {
      this.merge(m.state, now);
      reply = this.frames(false);
    } else {
      s.drop('bad-type');
      return [];
    }
    s.metrics.streamBytesOut += byteLength(reply);
    s.countOut('stream:reply', byteLength(reply));
    return reply;
  }

  /** Client side: the reply's frames to stream `id`, or null when it failed (refused, reset, timed out). */
  response(id: number, frames: readonly Uint8Array[] | null, now: number): void {
    const s = this.swim;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (frames === null || frames.length === 0 || byteLength(frames) === 0) return this.fail(p);
    s.metrics.streamBytesIn += byteLength(frames);
    const d = this.decode(frames);
    if (!d.ok) {
      s.drop(d.reason);
      return this.fail(p);
    }
    const m = d.msg;
    if (p.kind === 'ping' && m.type === 'ack' && m.seq === p.seq) return s.tcpAck(p.seq, p.to);
    if (p.kind !== 'ping' && m.type === 'push-pull') {
      this.merge(m.state, now);
      if (p.kind === 'join') {
        s.seedAnswered = true;
        s.emit({ type: 'join-ok', addr: p.to });
      }
      return;
    }
    s.drop('bad-type');
    this.fail(p);
  }

  /** Merges a peer's full state (memberlist mergeState: a remote "dead" only makes us suspect). */
  merge(s: PushPullState, now: number): void {
    for (const r of s.members) {
      if (r.state === 'alive') this.swim.members.alive(r.incarnation, r.name, r.addr, now);
      else if (r.state === 'left') this.swim.members.dead(r.incarnation, r.name, r.name, true, now);
      else this.swim.members.suspect(r.incarnation, r.name, s.from, now);
    }
    if (this.swim.self.state !== 'left') this.swim.delegate.merge(s, now);
  }

  /** Our full state for a push-pull. */
  state(join: boolean): PushPullState {
    const members = [...this.swim.members.byName.values()].map((m) => ({ name: m.name, addr: m.addr, incarnation: m.incarnation, state: m.state }));
    const t = this.swim.self.state === 'left' ? { networks: [], entries: [] } : this.swim.delegate.snapshot();
    return { from: this.swim.self.name, join, members, ...t };
  }

  private fail(p: Pending): void {
    this.swim.metrics.streamFailures++;
    if (p.kind === 'join') this.swim.emit({ type: 'join-failed', addr: p.to });
  }

  expire(now: number): void {
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      this.fail(p);
    }
  }

  nextDeadline(): number {
    let d = Infinity;
    for (const p of this.pending.values()) d = Math.min(d, p.deadline);
    return d;
  }
}
