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
}

export class LbState {
  /** network → record key → record */
  private readonly recs = new Map<string, Map<string, EndpointRecord>>();
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

  constructor(private readonly node: string) {}

  /** Stores a record (or deletes with null); returns what changed, or null when nothing did. */
  set(network: string, key: string, rec: EndpointRecord | null): Change | null {
    let m = this.recs.get(network);
    const prev = m?.get(key);
    if (rec === null) {
      if (!prev || !m) return null;
      m.delete(key);
      if (m.size === 0) this.recs.delete(network);
      this.invalidate(network, prev.serviceId);
      return { network, serviceId: prev.serviceId, node: prev.node, taskId: prev.taskId };
    }
    if (prev && JSON.stringify(prev) === JSON.stringify(rec)) return null;
    if (!m) {
      m = new Map();
      this.recs.set(network, m);
    }
    m.set(key, rec);
    const kept = rec.serviceId !== SBOX_SERVICE ? vipServiceOf([rec], this.node) : null;
    if (kept) this.known.set(`${network}\0${rec.serviceId}`, { ...kept, backends: [] });
    if (prev && prev.serviceId !== rec.serviceId) this.invalidate(network, prev.serviceId);
    this.invalidate(network, rec.serviceId);
    return { network, serviceId: rec.serviceId, node: rec.node, taskId: rec.taskId };
  }

  /** Drops every record of a network (we left it). */
  dropNetwork(network: string): Change[] {
    const m = this.recs.get(network);
    if (!m) return [];
    for (const k of [...this.known.keys()]) if (k.startsWith(`${network}\0`)) this.known.delete(k);
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

  private serviceIds(network: string, withKnown = false): string[] {
    const ids = new Set<string>();
    if (withKnown) for (const k of this.known.keys()) if (k.startsWith(`${network}\0`)) ids.add(k.slice(network.length + 1));
    for (const r of this.recs.get(network)?.values() ?? []) if (r.serviceId !== SBOX_SERVICE) ids.add(r.serviceId);
    return [...ids].sort();
  }

  private recordsOf(network: string, serviceId: string): EndpointRecord[] {
    return this.records(network).filter((r) => r.serviceId === serviceId);
  }

  /** VIP services of a network, in service-id order (same objects while unchanged). */
  vipServices(network: string): VipService[] {
    if (network === INGRESS_NETWORK) return [];
    const out: VipService[] = [];
    for (const id of this.serviceIds(network, true)) {
      const k = `${network}\0${id}`;
      let s = this.vipMemo.get(k);
      if (s === undefined) {
        const recs = this.recordsOf(network, id);
        s = recs.length ? vipServiceOf(recs, this.node) : (this.known.get(k) ?? null);
        this.vipMemo.set(k, s);
      }
      if (s) out.push(s);
    }
    return out;
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

  /** Local tasks (records owned by this node, not on `ingress`) → their networks. */
  localTasks(): Map<string, { networks: Set<string>; serviceIds: Set<string> }> {
    const out = new Map<string, { networks: Set<string>; serviceIds: Set<string> }>();
    for (const [net, m] of this.recs) {
      if (net === INGRESS_NETWORK) continue;
      for (const r of m.values()) {
        if (r.node !== this.node) continue;
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

  /** The local record of a task on one of its (non-ingress) networks. */
  localRecord(taskId: string): EndpointRecord | undefined {
    for (const [net, m] of this.recs) {
      if (net === INGRESS_NETWORK) continue;
      for (const r of m.values()) if (r.taskId === taskId && r.node === this.node) return r;
    }
    return undefined;
  }
}
