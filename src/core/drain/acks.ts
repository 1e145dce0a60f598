/**
 * Drain confirmation through the gossip tables (pure half).
 *
 * Why: a task that is stopping must stop receiving NEW connections on every node before its
 * process goes, or requests routed by a node that has not yet heard of the drain fail. A fixed
 * sleep ("the update surely reached everyone in 2 s") is wrong under load and slow when idle.
 * Instead every node says so in the tables:
 *
 * 1. The worker owning task T republishes T's `endpoints` records as `state: 'draining'` (on each
 *    of T's networks; the LB mirrors the record on `ingress` when T is published there).
 * 2. Every node, once its LB dataplane has APPLIED a state in which T is draining or absent on
 *    network N (no apply pending, none failed) and its DNS registry no longer serves T as healthy
 *    on N, writes an ack into table {@link DRAIN_ACK_TABLE} of network N, key `${T}/${node}`.
 *    It deletes that ack when T's record on N is deleted (the tombstone is reaped later like any
 *    other) or turns `running` again.
 * 3. The worker waits until every LIVE member of each of T's networks (gossip `networkNodes(N)`
 *    whose SWIM state is alive or suspect — a suspect may still route) has acked on N, or until
 *    a bounded timeout ({@link DEFAULT_DRAIN_ACK_TIMEOUT_MS}); then it stops T with the
 *    established-connection grace. Dead, left and unknown nodes are not waited for: their
 *    dataplane no longer matters to the cluster (their records were purged on death).
 *
 * Edge cases: a node running an agent without acks (older version) or whose LB is not active
 * yet is only covered by the timeout (counted and logged by the caller). A member joining N
 * during the wait is waited for too (it learns the draining state with the tables it syncs).
 */
import type { MemberState } from '../gossip/wire.js';
import { isFiniteNumber, jsonRecordCodec } from '../json-record.js';

/** Gossip table (per network) holding drain acks. */
export const DRAIN_ACK_TABLE = 'drain-acks';
/** How long a worker waits for acks before stopping the task anyway (ms). */
export const DEFAULT_DRAIN_ACK_TIMEOUT_MS = 10_000;

/** `${taskId}/${node}`; task ids and node names never contain '/'. */
export function ackKey(taskId: string, node: string): string {
  return `${taskId}/${node}`;
}

/** Inverse of ackKey; null for anything else. */
export function parseAckKey(key: string): { taskId: string; node: string } | null {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1 || key.indexOf('/', i + 1) !== -1) return null;
  return { taskId: key.slice(0, i), node: key.slice(i + 1) };
}

/** Ack payload: who acked and how long after it first saw the drain (its own clock, ms). */
export interface AckValue {
  v: 1;
  node: string;
  /** Milliseconds between this node seeing the draining record and its dataplane+DNS dropping it. */
  ms: number;
}

const ackCodec = jsonRecordCodec<AckValue>((o) =>
  (o.v === 1 && typeof o.node === 'string' && isFiniteNumber(o.ms) ? { v: 1, node: o.node, ms: o.ms } : null));

export function encodeAck(a: AckValue): Uint8Array {
  return ackCodec.encode(a);
}

/** Null when the bytes are not an ack (a bad ack is ignored; the key still names the node). */
export function decodeAck(bytes: Uint8Array): AckValue | null {
  return ackCodec.decode(bytes);
}

/** Is a member with this SWIM state waited for? alive and suspect yes; dead, left, unknown no. */
export function awaitsAck(state: MemberState | undefined): boolean {
  return state === 'alive' || state === 'suspect';
}

/** One network of a draining task as the waiting node sees it. */
export interface NetworkAcks {
  network: string;
  /** Gossip members of the network (networkNodes), self included. */
  nodes: readonly string[];
  /** Ack table keys present on that network (any task; filtered here). */
  ackKeys: readonly string[];
}

/**
 * Who still has to ack task `taskId`: every (network, node) where the node is a live member of
 * the network and no ack `${taskId}/${node}` exists on that network. Sorted, deterministic.
 */
export function pendingAcks(taskId: string, nets: readonly NetworkAcks[], state: (node: string) => MemberState | undefined): Array<{ network: string; node: string }> {
  const out: Array<{ network: string; node: string }> = [];
  for (const n of [...nets].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0))) {
    const acked = new Set<string>();
    for (const k of n.ackKeys) {
      const p = parseAckKey(k);
      if (p && p.taskId === taskId) acked.add(p.node);
    }
    for (const node of [...new Set(n.nodes)].sort()) {
      if (awaitsAck(state(node)) && !acked.has(node)) out.push({ network: n.network, node });
    }
  }
  return out;
}

export type DrainOutcome = 'acked' | 'waiting' | 'timeout';

/** The wait's state: acked as soon as nobody is pending, timeout once `timeoutMs` passed. */
export function drainOutcome(startedAt: number, now: number, timeoutMs: number, pending: number): DrainOutcome {
  if (pending === 0) return 'acked';
  return now - startedAt >= timeoutMs ? 'timeout' : 'waiting';
}

/**
 * What a node does about its own ack for task T on network N:
 * - `ack`: T's record there is draining, the LB applied that (settled) and DNS no longer serves T;
 * - `retract`: an ack exists but T's record is gone or running again;
 * - `none`: nothing to do (yet).
 */
export function ackAction(record: 'running' | 'draining' | undefined, lbApplied: boolean, dnsServes: boolean, acked: boolean): 'ack' | 'retract' | 'none' {
  if (record !== 'draining') return acked ? 'retract' : 'none';
  if (acked) return 'none';
  return lbApplied && !dnsServes ? 'ack' : 'none';
}
