/**
 * The cluster's gossip keyring as the managers keep it (one record in the store, KEYS.gossipKeys;
 * the record's format and the rotation steps are in gossip-keys.ts): read for joins and for every
 * node's pull, rotated on `cluster update --rotate-gossip-key`, on `node rm` and every period by
 * the leader. Writes go through the leader's fenced transaction, compare-and-put on the record.
 * Keys are secrets: nothing here logs them. The record is sealed with the cluster data key
 * (src/adapters/pki/seal.ts, AAD = its store key): the store never holds the keys in plain text.
 */
import { randomSecretBytes } from '../adapters/pki/crypto.js';
import { isSealed, type Sealer } from '../adapters/pki/seal.js';
import type { Store, TxnOp } from '../adapters/store/store.js';
import { MeshError } from '../core/errors.js';
import { nextRotationStep, parseGossipKeysRecord, requestRotation, startRotation, type GossipKeysRecord } from './gossip-keys.js';
import { KEYS } from './model.js';

/** What the keyring needs of its manager. */
export interface KeyringHost {
  readonly store: Store;
  leaderTxn(ops: TxnOp[]): Promise<number>;
  isLeader(): boolean;
  readonly sealer: Sealer;
}

/** The stored value of a keyring record: sealed under its store key. */
export function sealKeyring(sealer: Sealer, rec: GossipKeysRecord): unknown {
  return sealer.sealJson(KEYS.gossipKeys, rec);
}

/** The keyring record from its stored value (undefined: none); an unsealed one is refused (Manager.open migrates old ones). */
export function openKeyring(sealer: Sealer, v: unknown): GossipKeysRecord | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isSealed(v)) throw new MeshError('MESHD_STORE_CORRUPT', 'the gossip keyring record in the store is not sealed');
  return parseGossipKeysRecord(sealer.openJson(KEYS.gossipKeys, v));
}

/** A fresh 256-bit key, base64 (the keyring's format). */
const freshKey = (): string => Buffer.from(randomSecretBytes(32)).toString('base64');

export class ClusterKeyring {
  constructor(private readonly m: KeyringHost, private readonly now: () => Date) {}

  /** The keyring, primary first (undefined: a cluster made before keys were handed out, or insecure). */
  async current(): Promise<string[] | undefined> {
    return openKeyring(this.m.sealer, (await this.m.store.get(KEYS.gossipKeys))?.value)?.keys;
  }

  /** `cluster update --rotate-gossip-key`: a new key joins the ring; the leader's rounds finish the rotation (advance). */
  async rotate(): Promise<{ step: string; keys: number }> {
    const kv = await this.m.store.get(KEYS.gossipKeys);
    const rec = openKeyring(this.m.sealer, kv?.value);
    if (!rec || !kv) throw new MeshError('MESHD_BAD_ARGUMENT', 'this cluster has no gossip keyring (made with gossip.insecure, or before keys were handed out)');
    const next = startRotation(rec, freshKey(), this.now().getTime());
    await this.m.leaderTxn([{ op: 'put', key: KEYS.gossipKeys, value: sealKeyring(this.m.sealer, next), ifRevision: kv.revision }]);
    return { step: next.step!, keys: next.keys.length };
  }

  /** The leader's per-round step of a rotation (gossip-keys.ts nextRotationStep); a no-op on followers. */
  async advance(periodMs: number): Promise<void> {
    if (!this.m.isLeader()) return;
    const kv = await this.m.store.get(KEYS.gossipKeys);
    const rec = openKeyring(this.m.sealer, kv?.value);
    if (!rec || !kv) return;
    const next = nextRotationStep(rec, this.now().getTime(), { periodMs, fresh: freshKey });
    if (next) await this.m.leaderTxn([{ op: 'put', key: KEYS.gossipKeys, value: sealKeyring(this.m.sealer, next), ifRevision: kv.revision }]);
  }

  /** The write that asks for a rotation, for a transaction of the caller's (`node rm`); none without a keyring. */
  async rotationOps(nowMs: number): Promise<TxnOp[]> {
    const kv = await this.m.store.get(KEYS.gossipKeys);
    const ring = openKeyring(this.m.sealer, kv?.value);
    return ring && kv ? [{ op: 'put', key: KEYS.gossipKeys, value: sealKeyring(this.m.sealer, requestRotation(ring, freshKey(), nowMs)), ifRevision: kv.revision }] : [];
  }
}
