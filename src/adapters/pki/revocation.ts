/**
 * Revocation list of removed nodes. A node removed from the cluster has all its
 * certificates refused: by node id (covers every serial it ever had) and by serial (a
 * single certificate, e.g. a leaked one). Entries carry the certificate's notAfter so
 * they can be pruned once the certificate would be refused as expired anyway.
 * Persisted by the manager as one JSON document (cluster/revocations).
 */
import { MeshError } from '../../core/errors.js';

export interface RevocationEntry {
  /** Node id (CN) or certificate serial (hex). */
  kind: 'node' | 'serial';
  id: string;
  /** Epoch ms after which the entry may be dropped (latest notAfter it covers). */
  until: number;
  /** Epoch ms of the revocation. */
  at: number;
}

export class RevocationList {
  private readonly entries = new Map<string, RevocationEntry>();

  static fromJSON(v: unknown): RevocationList {
    const list = new RevocationList();
    if (v === undefined || v === null) return list;
    if (!Array.isArray(v)) throw new MeshError('MESHD_STORE_CORRUPT', 'stored revocation list is not an array');
    for (const e of v as unknown[]) {
      const r = e as Partial<RevocationEntry>;
      if (!r || (r.kind !== 'node' && r.kind !== 'serial') || typeof r.id !== 'string' || !Number.isFinite(r.until) || !Number.isFinite(r.at)) {
        throw new MeshError('MESHD_STORE_CORRUPT', 'stored revocation list has a malformed entry');
      }
      list.entries.set(`${r.kind}:${r.id}`, { kind: r.kind, id: r.id, until: r.until!, at: r.at! });
    }
    return list;
  }

  toJSON(): RevocationEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.kind + a.id < b.kind + b.id ? -1 : 1));
  }

  get size(): number {
    return this.entries.size;
  }

  revokeNode(nodeId: string, until: number, at: number): void {
    this.add('node', nodeId, until, at);
  }

  revokeSerial(serial: string, until: number, at: number): void {
    this.add('serial', serial.toLowerCase(), until, at);
  }

  private add(kind: RevocationEntry['kind'], id: string, until: number, at: number): void {
    const prev = this.entries.get(`${kind}:${id}`);
    this.entries.set(`${kind}:${id}`, { kind, id, until: Math.max(until, prev?.until ?? 0), at: prev?.at ?? at });
  }

  isRevoked(nodeId: string, serial: string): boolean {
    return this.entries.has(`node:${nodeId}`) || this.entries.has(`serial:${serial.toLowerCase()}`);
  }

  /** Drops entries whose certificates have all expired by `now` (epoch ms); returns how many. */
  prune(now: number): number {
    let n = 0;
    for (const [k, e] of this.entries) {
      if (e.until < now) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}
