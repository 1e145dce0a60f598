/**
 * One working copy of the control plane's state for a single serialized step: loaded
 * from the store, changed in memory (tasks, services, nodes), and written back as one
 * batch of store transactions. IPAM lives here too: the NetworkIpam core is rebuilt
 * from the records (networks, service VIPs, addresses of tasks that have not ended), so
 * the store is the only source of truth and a restarted manager allocates consistently.
 */
import { randomBytes } from 'node:crypto';
import { MeshError } from '../../core/errors.js';
import { NetworkIpam } from '../../core/ipam/networks.js';
import { storedCanary } from '../../core/orchestrator/canary.js';
import type { Store, TxnOp, TxnOptions } from '../../adapters/store/store.js';
import { KEYS, type ManagedNode } from '../model.js';
import { hasVips, ipamRequestOf } from './network-model.js';
import { attachmentOwner, CKEYS, INGRESS, type AttachmentRecord, type NetworkRecord, type ServiceRecord, type TaskRecord } from './model.js';
import { parseClusterSettings, type ClusterSettings } from './settings.js';

/** A fresh id: 24 lowercase hex chars (unique in its first 12, which names namespaces). */
export function newId(): string {
  return randomBytes(12).toString('hex');
}

/** How long a released task address stays unallocatable (ms). */
export const QUARANTINE_MS = 30_000;

const vipOwner = (svc: string): string => `vip:${svc}`;
const taskOwner = (task: string): string => `task:${task}`;

export class ControlState {
  readonly networks = new Map<string, NetworkRecord>();
  readonly services = new Map<string, ServiceRecord>();
  readonly tasks = new Map<string, TaskRecord>();
  readonly nodes = new Map<string, ManagedNode>();
  /** Standalone containers' network attachments (`netctl run`), by id; see attachments.ts. */
  readonly attachments = new Map<string, AttachmentRecord>();
  /** Ingress-sandbox address per node id. */
  readonly sboxes = new Map<string, string>();
  readonly ipam = new NetworkIpam();
  /** Cluster-wide scheduling settings (`cluster update --strategy`); defaults when never set. */
  settings: ClusterSettings = parseClusterSettings(undefined);
  private readonly dirty = new Map<string, unknown | null>();
  /**
   * The store's revision read just BEFORE this state was loaded: every record here is at least this
   * new, so a later read of the same revision means nothing changed since (a write racing the load
   * only makes this older — a cache keyed by it recomputes once more, never serves a stale answer).
   */
  loadedRevision = 0;

  /** `now` (wall-clock ms) enables the address quarantine. */
  static async load(store: Store, now?: number): Promise<ControlState> {
    const s = new ControlState();
    s.loadedRevision = await store.revision();
    const [nets, svcs, tasks, nodes, sboxes, settings, atts] = await Promise.all([
      store.list<NetworkRecord>(CKEYS.networks), store.list<ServiceRecord>(CKEYS.services),
      store.list<TaskRecord>(CKEYS.tasks), store.list<ManagedNode>(KEYS.nodes), store.list<{ ip: string }>(CKEYS.sboxes),
      store.get(KEYS.settings), store.list<AttachmentRecord>(CKEYS.attachments),
    ]);
    s.settings = parseClusterSettings(settings?.value);
    for (const kv of nets) {
      const n = kv.value;
      s.networks.set(n.id, n);
      s.ipam.create(ipamRequestOf(n));
    }
    for (const kv of nodes) s.nodes.set(kv.value.id, kv.value);
    for (const kv of svcs) {
      // A canary stored by older code also carries its derived weights: storedCanary drops them.
      s.services.set(kv.value.id, kv.value.canary ? { ...kv.value, canary: storedCanary(kv.value.canary) } : kv.value);
      for (const [netId, ip] of Object.entries(kv.value.vips)) s.claim(netId, vipOwner(kv.value.id), ip);
      for (const [netId, ip] of Object.entries(kv.value.vips6 ?? {})) s.claim6(netId, vipOwner(kv.value.id), ip);
    }
    const ingress = s.networkByName(INGRESS);
    for (const kv of sboxes) {
      const nodeId = kv.key.slice(CKEYS.sboxes.length);
      s.sboxes.set(nodeId, kv.value.ip);
      if (ingress) s.claim(ingress.id, `sbox:${nodeId}`, kv.value.ip);
    }
    for (const kv of atts) {
      s.attachments.set(kv.value.id, kv.value);
      for (const [netId, ip] of Object.entries(kv.value.addresses)) s.claim(netId, attachmentOwner(kv.value.id), ip);
    }
    for (const kv of tasks) {
      const t = kv.value;
      s.tasks.set(t.id, t);
      // Held, or released less than QUARANTINE_MS ago: a just-freed address is not handed out
      // again at once (stale neighbour/LB entries elsewhere could still point at it).
      const held = !t.released || (now !== undefined && now - t.timestamps.updated < QUARANTINE_MS);
      if (held) {
        for (const [netId, ip] of Object.entries(t.addresses)) s.claim(netId, taskOwner(t.id), ip);
        for (const [netId, ip] of Object.entries(t.addresses6 ?? {})) s.claim6(netId, taskOwner(t.id), ip);
      }
    }
    return s;
  }

  /** Re-registers a persisted address; a clash (should not happen) is left to the first holder. */
  private claim(netId: string, owner: string, ip: string): void {
    const n = this.networks.get(netId);
    if (!n) return;
    try {
      this.ipam.allocateAddress(n.name, owner, ip);
    } catch {
      /* already held or outside the subnet: the record is stale; the holder keeps it */
    }
  }

  /** claim() for a task's IPv6 address (a network that lost its IPv6 subnet cannot: it has none to lose). */
  private claim6(netId: string, owner: string, ip: string): void {
    const n = this.networks.get(netId);
    if (!n || n.subnet6 === undefined) return;
    try {
      this.ipam.allocateAddress6(n.name, owner, ip);
    } catch {
      /* as claim(): the holder keeps it */
    }
  }

  networkByName(name: string): NetworkRecord | undefined {
    for (const n of this.networks.values()) if (n.name === name) return n;
    return undefined;
  }
  netsByName(): Map<string, NetworkRecord> {
    return new Map([...this.networks.values()].map((n) => [n.name, n] as const));
  }
  netName = (id: string): string => this.networks.get(id)?.name ?? id;
  nodeName = (id: string): string | undefined => this.nodes.get(id)?.hostname;

  // ---- changes --------------------------------------------------------------------------

  putNetwork(n: NetworkRecord): void {
    this.networks.set(n.id, n);
    this.dirty.set(CKEYS.network(n.id), n);
  }
  deleteNetwork(id: string): void {
    const n = this.networks.get(id);
    if (n) this.ipam.remove(n.name);
    this.networks.delete(id);
    this.dirty.set(CKEYS.network(id), null);
  }
  putService(s: ServiceRecord): void {
    this.services.set(s.id, s);
    this.dirty.set(CKEYS.service(s.id), s);
  }
  deleteService(id: string): void {
    const s = this.services.get(id);
    if (s) this.setVips(s, []);
    if (s) this.setVips6(s, []);
    this.services.delete(id);
    this.dirty.set(CKEYS.service(id), null);
  }
  putTask(t: TaskRecord): void {
    this.tasks.set(t.id, t);
    this.dirty.set(CKEYS.task(t.id), t);
  }
  deleteTask(id: string): void {
    const t = this.tasks.get(id);
    if (t) this.releaseTask(t);
    this.tasks.delete(id);
    this.dirty.set(CKEYS.task(id), null);
  }
  putAttachment(a: AttachmentRecord): void {
    this.attachments.set(a.id, a);
    this.dirty.set(CKEYS.attachment(a.id), a);
  }
  /** Deletes the record and returns its addresses to the pools (no quarantine: the container is gone). */
  deleteAttachment(id: string): void {
    const a = this.attachments.get(id);
    if (a) {
      for (const [netId, ip] of Object.entries(a.addresses)) {
        const n = this.networks.get(netId);
        if (n) this.ipam.releaseAddress(n.name, ip);
      }
    }
    this.attachments.delete(id);
    this.dirty.set(CKEYS.attachment(id), null);
  }
  putSettings(v: ClusterSettings): void {
    this.settings = v;
    this.dirty.set(KEYS.settings, v);
  }
  putNode(n: ManagedNode): void {
    this.nodes.set(n.id, n);
    this.dirty.set(KEYS.node(n.id), n);
  }

  /** This node's ingress-sandbox address, allocated on first use (undefined without ingress). */
  sboxAddress(nodeId: string): string | undefined {
    const have = this.sboxes.get(nodeId);
    if (have) return have;
    const ingress = this.networkByName(INGRESS);
    if (!ingress || !this.nodes.has(nodeId)) return undefined;
    const ip = this.ipam.allocateAddress(ingress.name, `sbox:${nodeId}`);
    this.sboxes.set(nodeId, ip);
    this.dirty.set(CKEYS.sbox(nodeId), { ip });
    return ip;
  }

  /** Makes `s.vips` hold exactly one VIP on each network id in `netIds` (allocating/releasing). */
  setVips(s: ServiceRecord, netIds: readonly string[]): Record<string, string> {
    const want = new Set(netIds);
    const vips: Record<string, string> = {};
    for (const [id, ip] of Object.entries(s.vips)) {
      const n = this.networks.get(id);
      if (want.has(id) && n && hasVips(n)) vips[id] = ip;
      else if (n) this.ipam.releaseAddress(n.name, ip);
    }
    for (const id of want) {
      if (vips[id]) continue;
      const n = this.networks.get(id);
      if (n && hasVips(n)) vips[id] = this.ipam.allocateAddress(n.name, vipOwner(s.id));
    }
    return vips;
  }

  /**
   * setVips for the IPv6 VIPs (issue #19 item 2 part 2): one on each network of `netIds` that has
   * an IPv6 subnet; the others' are released. Returns undefined when there is none, so a service
   * record without IPv6 keeps no `vips6` key at all.
   */
  setVips6(s: Pick<ServiceRecord, 'id' | 'vips6'>, netIds: readonly string[]): Record<string, string> | undefined {
    const want = new Set(netIds);
    const vips: Record<string, string> = {};
    for (const [id, ip] of Object.entries(s.vips6 ?? {})) {
      const n = this.networks.get(id);
      if (want.has(id) && n && hasVips(n) && n.subnet6 !== undefined) vips[id] = ip;
      else if (n) this.ipam.releaseAddress6(n.name, ip);
    }
    const got: string[] = [];
    try {
      for (const id of want) {
        if (vips[id]) continue;
        const n = this.networks.get(id);
        if (n && hasVips(n) && n.subnet6 !== undefined) {
          vips[id] = this.ipam.allocateAddress6(n.name, vipOwner(s.id));
          got.push(id);
        }
      }
    } catch (e) {
      for (const id of got) this.ipam.releaseAddress6(this.networks.get(id)!.name, vips[id]!);
      throw e;
    }
    return Object.keys(vips).length ? vips : undefined;
  }

  /** Both VIP families of `next` (vip mode: on `netIds`; else none), from what `prev` holds. */
  assignVips(prev: ServiceRecord, next: ServiceRecord, netIds: readonly string[]): void {
    next.vips = this.setVips(prev, netIds);
    const v6 = this.setVips6(prev, netIds);
    if (v6) next.vips6 = v6;
    else delete next.vips6;
  }

  /**
   * Gives a task one address per network it attaches to, plus an IPv6 one on each dual-stack
   * network (`addresses6`, only when there is one); all or none (throws on exhaustion).
   */
  allocateTask(t: TaskRecord, netIds: readonly string[]): { addresses: Record<string, string>; addresses6?: Record<string, string> } {
    const got: Record<string, string> = {};
    const got6: Record<string, string> = {};
    try {
      for (const id of netIds) {
        const n = this.networks.get(id);
        if (!n) throw new Error(`network ${id} is gone`);
        got[id] = this.ipam.allocateAddress(n.name, taskOwner(t.id));
        if (n.subnet6 !== undefined) got6[id] = this.ipam.allocateAddress6(n.name, taskOwner(t.id));
      }
      return Object.keys(got6).length ? { addresses: got, addresses6: got6 } : { addresses: got };
    } catch (e) {
      for (const [id, ip] of Object.entries(got)) this.ipam.releaseAddress(this.networks.get(id)!.name, ip);
      for (const [id, ip] of Object.entries(got6)) this.ipam.releaseAddress6(this.networks.get(id)!.name, ip);
      throw e;
    }
  }

  /** Returns a task's addresses to the pools (kept on the record for `service ps`). */
  releaseTask(t: TaskRecord): TaskRecord {
    if (t.released) return t;
    for (const [id, ip] of Object.entries(t.addresses)) {
      const n = this.networks.get(id);
      if (n) this.ipam.releaseAddress(n.name, ip);
    }
    for (const [id, ip] of Object.entries(t.addresses6 ?? {})) {
      const n = this.networks.get(id);
      if (n) this.ipam.releaseAddress6(n.name, ip);
    }
    return { ...t, released: true };
  }

  /** How many records this step changed (0: nothing to commit). */
  pending(): number {
    return this.dirty.size;
  }

  /**
   * Writes every change in transactions of at most 500 ops, each with `opts` (the leader's
   * fence: a deposed leader's step is refused, see Manager). Chunks are not atomic with each
   * other: a refusal after the first chunk leaves the earlier ones written (each is a
   * consistent set of records; the next leader's step reconciles from what is stored).
   */
  async commit(store: Store, opts?: TxnOptions): Promise<number> {
    const ops: TxnOp[] = [...this.dirty].map(([key, v]) => (v === null ? { op: 'delete', key } : { op: 'put', key, value: v }));
    this.dirty.clear();
    for (let i = 0; i < ops.length; i += 500) {
      const chunk = ops.slice(i, i + 500);
      // A delete of a key that was never written (created and removed in one step) is a no-op.
      const existing = await Promise.all(chunk.map((o) => (o.op === 'delete' ? store.get(o.key) : Promise.resolve(true))));
      const real = chunk.filter((_, k) => existing[k]);
      if (real.length) await store.txn(real, opts);
    }
    return ops.length;
  }
}

/** Resolves a service reference (id, or unique name). */
export function findService(st: ControlState, ref: string): ServiceRecord {
  const byId = st.services.get(ref);
  if (byId) return byId;
  const byName = [...st.services.values()].filter((s) => s.spec.name === ref);
  if (byName.length === 1) return byName[0]!;
  throw new MeshError('MESHD_NOT_FOUND', `no such service: ${ref}`);
}

/** Resolves a network reference (id or name). */
export function findNetwork(st: ControlState, ref: string): NetworkRecord {
  const n = st.networks.get(ref) ?? st.networkByName(ref);
  if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${ref}`);
  return n;
}
