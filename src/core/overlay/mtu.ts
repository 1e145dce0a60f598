/**
 * Automatic overlay MTU (issue 19 §5): the policy that turns path-MTU probes into the underlay
 * MTU the overlay is built on. Pure; the agent's shell (agent/overlay/mtu.ts) probes, feeds the
 * results here, and applies what comes out.
 *
 * Why: VXLAN adds 50 bytes. When some path between two nodes carries less than this node's link
 * (a cloud VPC at 1450, a tunnel at 1400), an overlay built on the link MTU black-holes every
 * frame bigger than that path: the underlay drops the outer packet and nobody tells the sender
 * (libnetwork#2661, moby#49398). The overlay must fit the SMALLEST path to any member, since a
 * task may talk to any other node's tasks, and a packet that does not fit must be refused at the
 * sender's own interface ("message too long", an ICMP the application's stack sees) instead.
 *
 * Inputs: the local underlay link MTU and, per peer (underlay address), the largest IP packet a
 * DF probe got through (null: the probe learned nothing, e.g. the peer did not answer at all —
 * that is not a small path, so the previous value is kept). Output: the effective underlay MTU
 * and change records. Hysteresis, so a flapping probe never flaps interfaces:
 *   - lower at once (a too-large MTU black-holes; a too-small one only costs a little throughput);
 *   - raise only after `raiseAfterRounds` consecutive probe rounds all allowed a larger value,
 *     and then to the smallest value those rounds allowed.
 * A network created with `--mtu` is not governed by this (overlayMtuOf: the configured value wins).
 */
import { MeshError } from '../errors.js';
import { VXLAN_OVERHEAD } from './model.js';

/** Smallest underlay MTU the policy accepts from a probe or a link (IPv4 minimum reassembly size 576). */
export const MIN_UNDERLAY_MTU = 576;
/** Largest: the IPv4 total-length field. */
export const MAX_UNDERLAY_MTU = 65_535;

export interface MtuPolicyConfig {
  /** Consecutive rounds that must allow a larger MTU before it is raised (≥ 1). */
  raiseAfterRounds: number;
  /** VXLAN overhead the overlay MTU is computed with: 50 (IPv4 underlay, default) or 70 (IPv6). */
  overhead?: number;
}

export const DEFAULT_MTU_POLICY: MtuPolicyConfig = { raiseAfterRounds: 2 };

export type MtuInput =
  /** The local underlay link's MTU (read at start; again whenever the agent re-reads it). */
  | { type: 'link'; mtu: number }
  /**
   * One probe round over every current peer: underlay address → largest IP packet that passed with
   * DF set (bytes), or null when the probe learned nothing. Peers absent from the round are forgotten
   * (they left the cluster).
   */
  | { type: 'round'; results: Readonly<Record<string, number | null>> }
  /**
   * Probes of SOME peers only (members that just joined, whose path is not known yet): merged into
   * the known paths, nobody is forgotten, and it may lower the MTU at once but never raise it (a
   * raise needs full rounds). Why: a join adds one path; re-probing every peer on each join made
   * every agent of a cluster fork a process per peer at the same moment (see agent/overlay/mtu.ts).
   */
  | { type: 'paths'; results: Readonly<Record<string, number | null>> };

export interface MtuChange {
  /** Effective underlay MTU before and after (bytes). */
  from: number;
  to: number;
  /** Automatic overlay MTU before and after (underlay − VXLAN overhead). */
  overlayFrom: number;
  overlayTo: number;
  /** What limits it now: `link` (this node's own interface) or `path` (a peer's path, `peer`). */
  limitedBy: 'link' | 'path';
  peer: string | null;
  /** When it changed (the clock's ms). */
  at: number;
}

export interface MtuView {
  link: number;
  /** Effective underlay MTU: what the overlay is built on now. */
  underlay: number;
  /** Automatic overlay MTU (networks without `--mtu`). */
  overlay: number;
  limitedBy: 'link' | 'path';
  peer: string | null;
  /** Last known path MTU per peer (null: never measured). */
  paths: Record<string, number | null>;
  /** Rounds in a row that allowed a larger MTU (towards raiseAfterRounds). */
  higherRounds: number;
  rounds: number;
  changes: number;
}

/** The overlay MTU of a network: its configured `--mtu` wins, else the underlay MTU minus VXLAN overhead. */
export function overlayMtuOf(underlayMtu: number, configured?: number, overhead: number = VXLAN_OVERHEAD): number {
  return configured ?? underlayMtu - overhead;
}

function checkMtu(v: number, what: string): void {
  if (!Number.isInteger(v) || v < MIN_UNDERLAY_MTU || v > MAX_UNDERLAY_MTU) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: invalid MTU ${String(v)} (must be an integer ${MIN_UNDERLAY_MTU}..${MAX_UNDERLAY_MTU})`);
  }
}

/** The smallest of the link and every known path, and what set it (a tie goes to the link). */
export function smallestPath(link: number, paths: Readonly<Record<string, number | null>>): { mtu: number; limitedBy: 'link' | 'path'; peer: string | null } {
  let best = { mtu: link, limitedBy: 'link' as 'link' | 'path', peer: null as string | null };
  for (const peer of Object.keys(paths).sort()) {
    const p = paths[peer];
    if (p != null && p < best.mtu) best = { mtu: p, limitedBy: 'path', peer };
  }
  return best;
}

export class MtuPolicy {
  private link: number;
  private applied: number;
  private limitedBy: 'link' | 'path' = 'link';
  private peer: string | null = null;
  private readonly paths = new Map<string, number | null>();
  private higherRounds = 0;
  /** Smallest value the current streak of higher rounds allowed. */
  private raiseFloor = Infinity;
  private rounds = 0;
  private changes = 0;
  private out: MtuChange[] = [];

  constructor(linkMtu: number, private readonly cfg: MtuPolicyConfig = DEFAULT_MTU_POLICY) {
    checkMtu(linkMtu, 'underlay link');
    if (!Number.isInteger(cfg.raiseAfterRounds) || cfg.raiseAfterRounds < 1) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `raiseAfterRounds must be an integer ≥ 1, got ${String(cfg.raiseAfterRounds)}`);
    }
    this.link = linkMtu;
    this.applied = linkMtu;
  }

  handle(ev: MtuInput, now: number): void {
    if (ev.type === 'link') {
      checkMtu(ev.mtu, 'underlay link');
      this.link = ev.mtu;
      this.decide(now, false);
      return;
    }
    if (ev.type !== 'round' && ev.type !== 'paths') throw new MeshError('MESHD_BAD_ARGUMENT', `unknown MTU input ${(ev as { type: string }).type}`);
    for (const [peer, v] of Object.entries(ev.results)) if (v !== null) checkMtu(v, `path to ${peer}`);
    if (ev.type === 'round') {
      const seen = new Set(Object.keys(ev.results));
      for (const p of [...this.paths.keys()]) if (!seen.has(p)) this.paths.delete(p);
    }
    for (const [peer, v] of Object.entries(ev.results)) {
      if (v === null) {
        if (!this.paths.has(peer)) this.paths.set(peer, null);
        continue; // learned nothing: keep what we knew
      }
      this.paths.set(peer, v);
    }
    if (ev.type === 'paths') return this.decide(now, false);
    this.rounds++;
    this.decide(now, true);
  }

  /** Effective underlay MTU now. */
  get underlay(): number {
    return this.applied;
  }

  /** Automatic overlay MTU now (a network's `--mtu` wins: overlayMtuOf). */
  get overlay(): number {
    return overlayMtuOf(this.applied, undefined, this.cfg.overhead);
  }

  /** Changes since the last drain, oldest first. */
  drain(): MtuChange[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  view(): MtuView {
    return {
      link: this.link, underlay: this.applied, overlay: this.overlay, limitedBy: this.limitedBy, peer: this.peer,
      paths: Object.fromEntries([...this.paths].sort(([a], [b]) => (a < b ? -1 : 1))),
      higherRounds: this.higherRounds, rounds: this.rounds, changes: this.changes,
    };
  }

  /** `round`: a full probe round (counts towards a raise); a link change or a partial probe never raises by itself. */
  private decide(now: number, round: boolean): void {
    const c = smallestPath(this.link, Object.fromEntries(this.paths));
    if (c.mtu < this.applied) return this.apply(c, now);
    if (c.mtu === this.applied) {
      this.higherRounds = 0;
      this.raiseFloor = Infinity;
      this.limitedBy = c.limitedBy;
      this.peer = c.peer;
      return;
    }
    if (!round) return;
    this.higherRounds++;
    this.raiseFloor = Math.min(this.raiseFloor, c.mtu);
    if (this.higherRounds < this.cfg.raiseAfterRounds) return;
    const to = this.raiseFloor;
    this.apply(to === c.mtu ? c : { mtu: to, limitedBy: 'path', peer: c.peer }, now);
  }

  private apply(c: { mtu: number; limitedBy: 'link' | 'path'; peer: string | null }, now: number): void {
    const from = this.applied;
    this.applied = c.mtu;
    this.limitedBy = c.limitedBy;
    this.peer = c.peer;
    this.higherRounds = 0;
    this.raiseFloor = Infinity;
    this.changes++;
    this.out.push({ from, to: c.mtu, overlayFrom: overlayMtuOf(from, undefined, this.cfg.overhead), overlayTo: overlayMtuOf(c.mtu, undefined, this.cfg.overhead), limitedBy: c.limitedBy, peer: c.peer, at: now });
  }
}
