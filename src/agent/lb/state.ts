/**
 * The load balancer's view of the `endpoints` tables: records per network, and per service a
 * memoized VipService (per network) and IngressPublish[] (network `ingress`). A record change
 * drops only its service's memo, so every other service object handed to the dataplane stays
 * identical (the syncer's memo is by identity). No I/O.
 */
import type { IngressPublish, VipService } from '../../core/lb/model.js';
import { INGRESS_NETWORK, type EndpointRecord } from '../../core/endpoints.js';
import { SBOX_SERVICE, ingressOf, vipServiceOf } from './plan.js';

export interface Change {
  network: string;
  serviceId: string;
  /** Node that owns the record (local tasks change which namespaces exist). */
  node: string;
  taskId: string;
  /** The service the record was in before, when it moved to another one (both changed). */
  prevServiceId?: string;
}

export class LbState {
  /** network → record key → record */
  private readonly recs = new Map<string, Map<string, EndpointRecord>>();
  /**
   * Indexes kept beside `recs` so one record change costs O(its service), not O(every record) (issue 18 §4:
   * `localTasks()` and `recordsOf()` scanned every record of the network on each change, which made one
   * change O(n) and a 10,000-service initial sync quadratic). `${network}\0${serviceId}` → key → record.
   */
  private readonly bySvc = new Map<string, Map<string, EndpointRecord>>();
  /** Records this node owns: network → key → record. */
  private readonly localRecs = new Map<string, Map<string, EndpointRecord>>();
  /** network → service ids with records (not the sandbox service) → record count. */
  private readonly svcCount = new Map<string, Map<string, number>>();
  /** Sorted service ids per `${withKnown}\0${network}`, dropped when a network's id set changes. */
  private readonly idCache = new Map<string, string[]>();
  /** `${network}\0${serviceId}` → memo */
  private readonly vipMemo = new Map<string, VipService | null>();
  private readonly ingMemo = new Map<string, IngressPublish[]>();
  /**
   * `${network}\0${serviceId}` → last VIP service seen with records. When a service's last task
   * record is deleted (scaled to 0), the gossip tables no longer know it, but its VIP must keep
   * rejecting at once instead of timing out: it stays programmed with no backend until the
   * network is left. (Once the manager feeds service definitions, those replace this memory.)
   */
  private readonly known = new Map<string, VipService>();
  /** network → service ids in `known`. */
  private readonly knownIds = new Map<string, Set<string>>();

  constructor(private readonly node: string) {}

  /** Stores a record (or deletes with null); returns what changed, or null when nothing did. */
  set(network: string, key: string, rec: EndpointRecord | null): Change | null {
    let m = this.recs.get(network);
    const prev = m?.get(key);
    if (rec === null) {
      if (!prev || !m) return null;
      m.delete(key);
      if (m.size === 0) this.recs.delete(network);
      this.unindex(network, key, prev);
      this.invalidate(network, prev.serviceId);
      return { network, serviceId: prev.serviceId, node: prev.node, taskId: prev.taskId };
    }
    if (prev && JSON.stringify(prev) === JSON.stringify(rec)) return null;
    if (!m) {
      m = new Map();
      this.recs.set(network, m);
    }
    m.set(key, rec);
    if (prev) this.unindex(network, key, prev);
    this.index(network, key, rec);
    const kept = rec.serviceId !== SBOX_SERVICE ? vipServiceOf([rec], this.node) : null;
    if (kept) {
      const k = `${network}\0${rec.serviceId}`;
      if (!this.known.has(k)) {
        let ids = this.knownIds.get(network);
        if (!ids) this.knownIds.set(network, (ids = new Set()));
        ids.add(rec.serviceId);
        this.idsChanged(network);
      }
      this.known.set(k, { ...kept, backends: [] });
    }
    const moved = prev && prev.serviceId !== rec.serviceId ? prev.serviceId : undefined;
    if (moved !== undefined) this.invalidate(network, moved);
    this.invalidate(network, rec.serviceId);
    return { network, serviceId: rec.serviceId, node: rec.node, taskId: rec.taskId, ...(moved !== undefined ? { prevServiceId: moved } : {}) };
  }

  private index(network: string, key: string, rec: EndpointRecord): void {
    const sk = `${network}\0${rec.serviceId}`;
    let bs = this.bySvc.get(sk);
    if (!bs) this.bySvc.set(sk, (bs = new Map()));
    bs.set(key, rec);
    if (rec.node === this.node) {
      let l = this.localRecs.get(network);
      if (!l) this.localRecs.set(network, (l = new Map()));
      l.set(key, rec);
    }
    if (rec.serviceId === SBOX_SERVICE) return;
    let c = this.svcCount.get(network);
    if (!c) this.svcCount.set(network, (c = new Map()));
    const n = c.get(rec.serviceId) ?? 0;
    c.set(rec.serviceId, n + 1);
    if (n === 0) this.idsChanged(network);
  }

  private unindex(network: string, key: string, rec: EndpointRecord): void {
    const sk = `${network}\0${rec.serviceId}`;
    const bs = this.bySvc.get(sk);
    bs?.delete(key);
    if (bs && bs.size === 0) this.bySvc.delete(sk);
    const l = this.localRecs.get(network);
    l?.delete(key);
    if (l && l.size === 0) this.localRecs.delete(network);
    if (rec.serviceId === SBOX_SERVICE) return;
    const c = this.svcCount.get(network);
    const n = c?.get(rec.serviceId) ?? 0;
    if (!c || n === 0) return;
    if (n > 1) return void c.set(rec.serviceId, n - 1);
    c.delete(rec.serviceId);
    if (c.size === 0) this.svcCount.delete(network);
    this.idsChanged(network);
  }

  private idsChanged(network: string): void {
    this.idCache.delete(`0\0${network}`);
    this.idCache.delete(`1\0${network}`);
  }

  /** Drops every record of a network (we left it). */
  dropNetwork(network: string): Change[] {
    const m = this.recs.get(network);
    if (!m) return [];
    for (const id of this.knownIds.get(network) ?? []) this.known.delete(`${network}\0${id}`);
    this.knownIds.delete(network);
    this.idsChanged(network);
    return [...m.keys()].map((k) => this.set(network, k, null)).filter((c): c is Change => c !== null);
  }

  private invalidate(network: string, serviceId: string): void {
    const k = `${network}\0${serviceId}`;
    this.vipMemo.delete(k);
    this.ingMemo.delete(k);
  }

  records(network: string): EndpointRecord[] {
    return [...(this.recs.get(network)?.values() ?? [])];
  }

  networks(): string[] {
    return [...this.recs.keys()].sort();
  }

  /** Sorted service ids of a network (with `known`: also those scaled to 0); cached until the id set changes. */
  private serviceIds(network: string, withKnown = false): string[] {
    const ck = `${withKnown ? 1 : 0}\0${network}`;
    const hit = this.idCache.get(ck);
    if (hit) return hit;
    const ids = new Set<string>(this.svcCount.get(network)?.keys() ?? []);
    if (withKnown) for (const id of this.knownIds.get(network) ?? []) ids.add(id);
    const out = [...ids].sort();
    this.idCache.set(ck, out);
    return out;
  }

  private recordsOf(network: string, serviceId: string): EndpointRecord[] {
    return [...(this.bySvc.get(`${network}\0${serviceId}`)?.values() ?? [])];
  }

  /** VIP services of a network, in service-id order (same objects while unchanged). O(services). */
  vipServices(network: string): VipService[] {
    if (network === INGRESS_NETWORK) return [];
    const out: VipService[] = [];
    for (const id of this.serviceIds(network, true)) {
      const s = this.vipService(network, id);
      if (s) out.push(s);
    }
    return out;
  }

  /**
   * The VIP service `serviceId` on `network` (null: none, dnsrr, no port, or on `ingress`), the same
   * object while none of its records changed. O(its records) on a change, O(1) after.
   */
  vipService(network: string, serviceId: string): VipService | null {
    if (network === INGRESS_NETWORK || serviceId === SBOX_SERVICE) return null;
    const k = `${network}\0${serviceId}`;
    let s = this.vipMemo.get(k);
    if (s === undefined) {
      const recs = this.recordsOf(network, serviceId);
      s = recs.length ? vipServiceOf(recs, this.node) : (this.known.get(k) ?? null);
      this.vipMemo.set(k, s);
    }
    return s;
  }

  /** Ingress publishes of every service attached to `ingress`, in service-id order. */
  ingress(): IngressPublish[] {
    const out: IngressPublish[] = [];
    for (const id of this.serviceIds(INGRESS_NETWORK)) {
      const k = `${INGRESS_NETWORK}\0${id}`;
      let g = this.ingMemo.get(k);
      if (g === undefined) {
        g = ingressOf(this.recordsOf(INGRESS_NETWORK, id), this.node);
        this.ingMemo.set(k, g);
      }
      out.push(...g);
    }
    return out;
  }

  /** Local tasks (records owned by this node, not on `ingress`) → their networks. O(local records). */
  localTasks(): Map<string, { networks: Set<string>; serviceIds: Set<string> }> {
    const out = new Map<string, { networks: Set<string>; serviceIds: Set<string> }>();
    for (const [net, m] of this.localRecs) {
      if (net === INGRESS_NETWORK) continue;
      for (const r of m.values()) {
        const t = out.get(r.taskId) ?? { networks: new Set(), serviceIds: new Set() };
        t.networks.add(net);
        t.serviceIds.add(r.serviceId);
        out.set(r.taskId, t);
      }
    }
    return out;
  }

  /** The record of task `taskId` on `network` (records are keyed by task id; any key is accepted). */
  recordOf(network: string, taskId: string): EndpointRecord | undefined {
    const m = this.recs.get(network);
    const r = m?.get(taskId);
    if (r?.taskId === taskId) return r;
    for (const x of m?.values() ?? []) if (x.taskId === taskId) return x;
    return undefined;
  }

  /** Records this node owns on every network but `ingress`. O(local records). */
  localRecords(): EndpointRecord[] {
    const out: EndpointRecord[] = [];
    for (const [net, m] of this.localRecs) if (net !== INGRESS_NETWORK) out.push(...m.values());
    return out;
  }

  /** The local record of a task on one of its (non-ingress) networks. */
  localRecord(taskId: string): EndpointRecord | undefined {
    for (const [net, m] of this.localRecs) {
      if (net === INGRESS_NETWORK) continue;
      for (const r of m.values()) if (r.taskId === taskId) return r;
    }
    return undefined;
  }
}
