/**
 * Rejoin after a restart (pure): which members an agent remembers, how the remembered list is
 * stored, and which of them a join attempt push-pulls with.
 *
 * Why: a node's configured seeds may be gone (the lab's n1 has none; a worker whose join manager was
 * replaced). After a graceful leave the others mark it `left` and never reconnect to it (only dead
 * members get the periodic reconnect), so a node restarted with no reachable configured seed stayed
 * alone for good. Serf/Consul keep a member snapshot and rejoin through it; so do we: the agent
 * writes the addresses of the members it last saw alive into its data dir and adds them to its seeds
 * on the next start (agent/gossip/member-snapshot.ts does the I/O).
 */
import type { Rng } from '../clock.js';
import type { MemberState } from './wire.js';

/** One remembered member: the address is what we join through; the name is for logs and humans. */
export interface RememberedMember {
  name: string;
  addr: string;
}

/** Format version of the snapshot file; a file with another version is ignored (read as corrupt). */
export const MEMBER_SNAPSHOT_VERSION = 1;

/**
 * Remembered members per join attempt (besides the configured seeds). Three like the lab's seed plan:
 * enough that one or two gone members do not stall a rejoin, few enough that a node remembering 63
 * members does not push-pull to all of them at once (each push-pull is a full state exchange the
 * answering node must serve — the 64-agent join storm that made joinRetryDelayMs back off).
 */
export const REJOIN_SEEDS_PER_ATTEMPT = 3;

/** Most members a snapshot keeps (matches the config schema's cap on seeds; more adds nothing to a rejoin). */
export const MEMBER_SNAPSHOT_MAX = 64;

/**
 * The members worth remembering: those we see alive or suspect (a suspect may well be up; a rejoin
 * through it costs one failed push-pull at worst), never ourselves, never dead or left ones (a left
 * member's address would only be retried in vain, and a dead one is what the cluster gave up on).
 * Sorted by name, so an unchanged membership gives an identical file (the writer skips the write).
 */
export function membersToRemember(
  members: ReadonlyArray<{ name: string; addr: string; state: MemberState }>,
  self: string,
): RememberedMember[] {
  const out = members
    .filter((m) => m.name !== self && (m.state === 'alive' || m.state === 'suspect'))
    .map((m) => ({ name: m.name, addr: m.addr }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out.slice(0, MEMBER_SNAPSHOT_MAX);
}

/** The snapshot file's text (one JSON object, a trailing newline). */
export function encodeMemberSnapshot(members: readonly RememberedMember[]): string {
  return JSON.stringify({ version: MEMBER_SNAPSHOT_VERSION, members }) + '\n';
}

/**
 * Parses a snapshot file; throws an Error saying what is wrong when it is not one (truncated write,
 * another version, hand-edited garbage). The caller logs one warning and starts as if it had none.
 */
export function decodeMemberSnapshot(text: string): RememberedMember[] {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null) throw new Error('not a JSON object');
  const o = v as { version?: unknown; members?: unknown };
  if (o.version !== MEMBER_SNAPSHOT_VERSION) throw new Error(`unknown version ${String(o.version)}`);
  if (!Array.isArray(o.members)) throw new Error('no members array');
  const out: RememberedMember[] = [];
  for (const m of o.members as unknown[]) {
    const r = m as { name?: unknown; addr?: unknown };
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string' || typeof r.addr !== 'string' || r.name === '' || r.addr === '') {
      throw new Error('a member without a name and an address');
    }
    out.push({ name: r.name, addr: r.addr });
  }
  return out.slice(0, MEMBER_SNAPSHOT_MAX);
}

/** What a (re)starting agent joins through: its configured seeds, and the remembered addresses not among them. */
export interface RejoinPlan {
  /** Configured seeds minus our own address (deduplicated, in configured order): tried on every attempt. */
  configured: string[];
  /** Remembered addresses not configured and not ours, in a random order fixed at start (see seedsForAttempt). */
  remembered: string[];
}

/**
 * Builds the plan: configured ∪ remembered, deduplicated, our own address excluded (a node restarted
 * with the same address must not "join" itself). The remembered addresses are shuffled once with `rng`
 * (Fisher–Yates), so successive attempts walk through all of them in windows (seedsForAttempt) and
 * different nodes restarting at once start with different members.
 */
export function planRejoin(configured: readonly string[], remembered: readonly string[], selfAddr: string, rng: Rng): RejoinPlan {
  const conf = [...new Set(configured)].filter((s) => s !== selfAddr);
  const seen = new Set([...conf, selfAddr]);
  const rest: string[] = [];
  for (const a of remembered) {
    if (seen.has(a)) continue;
    seen.add(a);
    rest.push(a);
  }
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [rest[i], rest[j]] = [rest[j]!, rest[i]!];
  }
  return { configured: conf, remembered: rest };
}

/** True when the plan has nobody to join through (a first node, or one whose snapshot was empty): joined at once. */
export function planIsEmpty(p: RejoinPlan): boolean {
  return p.configured.length === 0 && p.remembered.length === 0;
}

/**
 * The seeds join attempt `attempt` (0-based) push-pulls with: every configured seed, plus the
 * attempt's window of `perAttempt` remembered addresses — window k starts at k × perAttempt, wrapping
 * around — so each retry tries other members and every one is tried within ⌈n / perAttempt⌉ attempts.
 * Bounded: a node remembering 63 members sends at most perAttempt + configured push-pulls per attempt.
 */
export function seedsForAttempt(p: RejoinPlan, attempt: number, perAttempt = REJOIN_SEEDS_PER_ATTEMPT): string[] {
  const n = p.remembered.length;
  const k = Math.min(perAttempt, n);
  const out = [...p.configured];
  const start = n === 0 ? 0 : (attempt * perAttempt) % n;
  for (let i = 0; i < k; i++) out.push(p.remembered[(start + i) % n]!);
  return out;
}
