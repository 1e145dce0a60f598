/**
 * The cluster's gossip keyring as the manager keeps it (issue 16 §4, swarm's "encrypted by
 * default"): `cluster init` stores the first manager's keyring at `cluster/gossip-keys`, every
 * join answer carries it (over the mTLS join channel, never argv or logs), and agents pull it
 * (`GET /v1/gossip-keys`, node access) so a node of a cluster always gossips with the cluster's key.
 *
 * At rest: the record is sealed with the cluster data key (cluster-keyring.ts, src/adapters/pki/seal.ts).
 */
import { MeshError } from '../core/errors.js';

/** AES-256: 32 bytes, base64. */
const KEY_B64 = /^[A-Za-z0-9+/]{43}=$/;
/** More keys than a rotation ever needs means a damaged record. */
const MAX_KEYS = 8;

export interface GossipKeysRecord {
  /** Base64 keys, the primary (used to encrypt) first. */
  keys: string[];
  /** A rotation under way: `install` (new key last, still secondary) or `use` (new key primary, old kept). */
  step?: 'install' | 'use' | undefined;
  /** Wall-clock ms the current step began. */
  stepAt?: number | undefined;
  /** Wall-clock ms the last rotation ended (or the ring was made): the schedule counts from it. */
  rotatedAt?: number | undefined;
  /** Another rotation is owed once this one ends (`node rm` during a rotation: the removed node may hold the new key). */
  again?: boolean | undefined;
}

/**
 * How long each rotation step stays before the next (ms). Agents pull the ring every dispatcher
 * round (1 s by default): 5 s leaves every live node several rounds to take the step, so no node
 * encrypts with a key a peer has not installed yet, and none has dropped a key a peer still uses.
 */
export const ROTATION_STEP_MS = 5_000;
/** The default rotation period (swarm's 12 h); 0 turns scheduled rotation off. */
export const DEFAULT_ROTATION_PERIOD_MS = 12 * 3600_000;

/** Starts a rotation: `fresh` joins the ring as a secondary. Refused while one is under way. */
export function startRotation(rec: GossipKeysRecord, fresh: string, now: number): GossipKeysRecord {
  if (rec.step) throw new MeshError('MESHD_ROTATION_BUSY', `a gossip key rotation is under way (step ${rec.step}); try again in ${Math.ceil(ROTATION_STEP_MS / 1000) * 2} s`);
  return { keys: [...rec.keys.filter((k) => k !== fresh), fresh], step: 'install', stepAt: now, rotatedAt: rec.rotatedAt };
}

/**
 * `node rm`: the removed node must be cut off by a key it never saw — a new rotation now, or,
 * while one runs (the node may already hold its new key), another right after it.
 */
export function requestRotation(rec: GossipKeysRecord, fresh: string, now: number): GossipKeysRecord {
  return rec.step ? { ...rec, again: true } : startRotation(rec, fresh, now);
}

/**
 * The rotation's next step at `now`, or undefined when nothing is due: install (everywhere) →
 * use → remove the old keys, one step per `stepMs`; and a new rotation once `periodMs` has
 * passed since the last (0: never by schedule). Pure: the leader stores what it returns.
 */
export function nextRotationStep(rec: GossipKeysRecord, now: number, o: { periodMs: number; fresh: () => string; stepMs?: number }): GossipKeysRecord | undefined {
  const stepMs = o.stepMs ?? ROTATION_STEP_MS;
  if (rec.step && now - (rec.stepAt ?? 0) < stepMs) return undefined;
  if (rec.step === 'install') {
    const fresh = rec.keys[rec.keys.length - 1]!;
    return { keys: [fresh, ...rec.keys.filter((k) => k !== fresh)], step: 'use', stepAt: now, rotatedAt: rec.rotatedAt };
  }
  if (rec.step === 'use') return { keys: [rec.keys[0]!], rotatedAt: now, ...(rec.again ? { again: true } : {}) };
  if (rec.again) return startRotation(rec, o.fresh(), now);
  if (o.periodMs > 0 && rec.rotatedAt !== undefined && now - rec.rotatedAt >= o.periodMs) return startRotation(rec, o.fresh(), now);
  if (rec.rotatedAt === undefined) return { ...rec, rotatedAt: now }; // the schedule starts now
  return undefined;
}

/** Checks a keyring (from the store or an agent): 1–8 distinct base64 32-byte keys. */
export function checkGossipKeys(v: unknown, what: string): string[] {
  const bad = (why: string): never => {
    throw new MeshError(what === 'store' ? 'MESHD_STORE_CORRUPT' : 'MESHD_BAD_ARGUMENT', `gossip keyring (${what}) ${why}`);
  };
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_KEYS) return bad(`must be 1–${MAX_KEYS} keys`);
  for (const k of v) if (typeof k !== 'string' || !KEY_B64.test(k)) bad('holds a key that is not base64 of 32 bytes');
  if (new Set(v).size !== v.length) bad('holds a key twice');
  return v as string[];
}

/** The stored record; undefined when the cluster has none (made before this feature, or insecure). */
export function parseGossipKeysRecord(v: unknown): GossipKeysRecord | undefined {
  if (v === undefined || v === null) return undefined;
  const r = v as Partial<GossipKeysRecord>;
  const keys = checkGossipKeys(r.keys, 'store');
  const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  if (r.step !== undefined && r.step !== 'install' && r.step !== 'use') throw new MeshError('MESHD_STORE_CORRUPT', 'gossip keyring (store) has an unknown rotation step');
  return { keys, step: r.step, stepAt: num(r.stepAt), rotatedAt: num(r.rotatedAt), ...(r.again === true ? { again: true } : {}) };
}
