/**
 * Convergence receipts, the wire format (pure). Two formats share table {@link CONVERGENCE_ACK_TABLE}:
 *
 * - v2 (this session, issue 18 §1): ONE entry per node × service (× bucket, below), key
 *   `svc:${serviceId}:${bucket}/${node}`, whose value is a SNAPSHOT: "my LB and DNS hold these
 *   (task, rev) of the service", each with when it was programmed here. A newer snapshot replaces
 *   the older one in the table and — same gossip key — in every broadcast queue (BroadcastQueue
 *   replaces a queued message of the same key), so one queued message acknowledges many changes and
 *   a replaced one loses nothing: the newest snapshot still lists every change the older one did.
 *   Nothing is deleted when a task goes: it just leaves the next snapshot; collectors expire what
 *   they hold locally (collect.ts). Under churn this is what took acks from 8 of 10 messages per
 *   add/remove pair (N acks + N ack deletes) to one replaceable message per node per write.
 * - v1 (sessions ≤ 6): one entry `${task}/${node}` per change, deleted on expiry and retraction.
 *   Still DECODED (collect.ts indexes them), so a new node counts an old node's acks; an old node
 *   sees v2 values as bad acks (its `badAcks` counter) and never completes a change a new node is
 *   part of — a mixed cluster reports, it does not break.
 *
 * An item names its task by a 32-bit hash (8 hex) to keep snapshots small (~26 B an item). A service
 * with more than {@link BUCKET_TASKS} programmed tasks on a node is split into 2^k buckets by that
 * hash, so one value stays well under a packet (and LIMITS.value) at any service size.
 */
import { isFiniteNumber, jsonRecordCodec } from '../json-record.js';

export const CONVERGENCE_ACK_TABLE = 'conv-acks';
/** Programmed tasks per snapshot entry at most before the service is split into buckets. */
export const BUCKET_TASKS = 40;
/** Buckets per service at most (2 hex digits of the task hash). */
export const MAX_BUCKETS = 256;

/** FNV-1a 32-bit of a string, 8 hex digits. */
export function fnv32(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** A task's name in snapshots. */
export const taskHash = (taskId: string): string => fnv32(taskId);

/** Buckets for `n` programmed tasks of one service: the smallest power of two keeping ≤ BUCKET_TASKS each. */
export function bucketCount(n: number): number {
  let b = 1;
  while (b < MAX_BUCKETS && n > b * BUCKET_TASKS) b *= 2;
  return b;
}

export function bucketOf(hash: string, buckets: number): number {
  return parseInt(hash.slice(0, 2), 16) % buckets;
}

export function snapshotKey(serviceId: string, bucket: number, node: string): string {
  return `svc:${serviceId}:${bucket}/${node}`;
}

/** `svc:${serviceId}:${bucket}/${node}` → parts; null for anything else (a v1 key, say). */
export function parseSnapshotKey(key: string): { serviceId: string; bucket: number; node: string } | null {
  const m = /^svc:([^:/]+):(\d{1,3})\/([^/]+)$/.exec(key);
  return m ? { serviceId: m[1]!, bucket: Number(m[2]), node: m[3]! } : null;
}

/** One programmed (task, rev): seen `tookMs + agoMs` before the snapshot's `at`, programmed `agoMs` before it. */
export interface SnapshotItem {
  task: string;
  rev: string;
  tookMs: number;
  agoMs: number;
}

export interface ProgrammedSnapshot {
  v: 2;
  node: string;
  service: string;
  /** When the snapshot was written (epoch ms, the node's wall clock). */
  at: number;
  items: SnapshotItem[];
}

interface Wire { v: 2; node: string; service: string; at: number; s: string }

const ITEM = /^([0-9a-f]{8})([0-9a-f]{8})([0-9a-z]{1,9})\.([0-9a-z]{1,9})$/;

const wireCodec = jsonRecordCodec<Wire>((o) =>
  (o.v === 2 && typeof o.node === 'string' && typeof o.service === 'string' && isFiniteNumber(o.at) && typeof o.s === 'string'
    ? { v: 2, node: o.node, service: o.service, at: o.at, s: o.s }
    : null));

/** Items as `hash8 rev8 took36 . ago36`, comma-separated (a JSON array of objects would be 3× the bytes). */
export function encodeSnapshot(s: ProgrammedSnapshot): Uint8Array {
  const items = s.items.map((i) => `${i.task}${i.rev}${Math.max(0, Math.round(i.tookMs)).toString(36)}.${Math.max(0, Math.round(i.agoMs)).toString(36)}`);
  return wireCodec.encode({ v: 2, node: s.node, service: s.service, at: Math.round(s.at), s: items.join(',') });
}

/** Null when the bytes are not a v2 snapshot (from the network: validated, never throws). */
export function decodeSnapshot(bytes: Uint8Array): ProgrammedSnapshot | null {
  const w = wireCodec.decode(bytes);
  if (!w) return null;
  const items: SnapshotItem[] = [];
  if (w.s !== '') {
    for (const part of w.s.split(',')) {
      const m = ITEM.exec(part);
      if (!m) return null;
      items.push({ task: m[1]!, rev: m[2]!, tookMs: parseInt(m[3]!, 36), agoMs: parseInt(m[4]!, 36) });
    }
  }
  return { v: 2, node: w.node, service: w.service, at: w.at, items };
}
