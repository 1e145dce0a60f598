/**
 * NetworkDB-style replicated tables: per network, table → key → value, owned by the node that wrote it.
 * Ordering is a Lamport clock with last-writer-wins, ties broken by the greater owner name (deterministic).
 * Deletes are tombstones, reaped after tombstoneReapMs. A node stores only networks it joined; which node
 * is on which network is itself replicated (per node × network, LWW). Entries of a dead/left node, or of a
 * node that left the network, are removed everywhere (no tombstone: the owner is gone). A node that hears
 * stale news about itself (e.g. after a restart) re-asserts its actual state with a newer Lamport time.
 */
import type { BroadcastItem } from './broadcast.js';
import type { GossipConfig } from './config.js';
import { MeshError } from '../errors.js';
import { encode, LIMITS, type MemberState, type NetworkRecordWire, type TableEntryWire } from './wire.js';

export interface TableEvent {
  type: 'create' | 'update' | 'delete';
  network: string;
  table: string;
  key: string;
  value: Uint8Array;
  owner: string;
}
export interface NetworkEvent {
  type: 'network-join' | 'network-leave';
  node: string;
  network: string;
}

export interface TablesHost {
  broadcast(item: BroadcastItem): void;
  emitTable(ev: TableEvent | NetworkEvent): void;
  memberState(name: string): MemberState | undefined;
  /** Ask for a prompt push-pull with some member of `network` (we just joined it). */
  requestSync(network: string): void;
  /**
   * Send `messages` (encoded table news) straight to member `node` over UDP, packed into as few packets as fit,
   * nothing piggybacked (a join catch-up). False when that cannot be done (not alive, a message too big for one
   * packet): the caller falls back to a push-pull with the node.
   */
  sendDirect(node: string, messages: readonly Uint8Array[]): boolean;
  /** Ask for a prompt push-pull with member `node`. */
  syncWith(node: string): void;
  /** How long news of a join takes to reach every member (ms): see catchUp. */
  joinSpreadMs(): number;
  /**
   * Hand `message` directly to every alive member when the cluster has at most DIRECT_FANOUT_MAX_MEMBERS
   * (besides the broadcast); nothing above that. For our network join/leave records (announce).
   */
  sendDirectAll(message: Uint8Array): void;
}

/**
 * Most bytes of table news one join catch-up sends over UDP (≈ 16 packets of 1,400 B); more than that and the
 * joiner gets a push-pull instead (TCP, full state, rate-limited by the engine), so a join under heavy writes
 * costs one stream, not a burst of datagrams a busy receiver would drop.
 */
export const CATCH_UP_MAX_BYTES = 22_400;

/**
 * Networks up to this many members get each write from its owner directly (fanOut), besides the epidemic. Above
 * it one write would be a burst of ≥ 64 datagrams from one node, which is what gossip exists to avoid; there the
 * epidemic (retransmitLimit 8 at 10–99 members, which measured no tail in the simulator) carries news alone, with
 * the direct copy kept for members that just joined.
 */
export const DIRECT_FANOUT_MAX_MEMBERS = 64;

interface Entry {
  value: Uint8Array;
  ltime: number;
  owner: string;
  deleted: boolean;
  /** Local time the tombstone was learnt, for reaping. */
  deletedAt: number;
}
interface NetRecord {
  ltime: number;
  leave: boolean;
  changedAt: number;
}

const SEP = '\u0000';
const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

function checkName(what: string, s: string, max: number): void {
  const n = utf8.encode(s).length;
  if (n === 0 || n > max) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be 1..${max} bytes`, { [what]: s.slice(0, 80) });
}

export class Tables {
  private clock = 0;
  /** network → "table\0key" → entry */
  private readonly entries = new Map<string, Map<string, Entry>>();
  /** network → node → record */
  private readonly nets = new Map<string, Map<string, NetRecord>>();
  /**
   * Tombstones and network-leave records in the order they were made (`network\0table\0key` and
   * `network\0node` → time), so the once-a-second reap looks only at the oldest ones instead of every
   * entry: at rest the tables cost nothing per tick however many services they hold (issue 18 §3/§4).
   * Times come from the caller's monotonic clock; were one to step back, a tombstone made then is
   * reaped when the older ones ahead of it are — late, never early.
   */
  private readonly tombs = new Map<string, { net: string; tk: string; at: number }>();
  private readonly leaves = new Map<string, { net: string; node: string; at: number }>();
  /**
   * Our own writes of the last pushPullIntervalMs, per network (`table\0key` → local time, oldest first): what a
   * member that joins the network now may have missed (see catchUp). Trimmed from the oldest on each write and
   * catch-up, so it holds only recent writes however many entries we own.
   */
  private readonly recentOwn = new Map<string, Map<string, number>>();
  /** Members we heard join a network of ours within joinSpreadMs (network → node → until): our writes go to them directly too. */
  private readonly freshJoiners = new Map<string, Map<string, number>>();

  /**
   * Bytes of table news handed to the broadcast queue, per table (local writes and rebroadcasts):
   * the demand each table puts on gossip's send budget (issue 18 §1: convergence acks were two thirds
   * of it). A queued message later replaced by a newer one of the same key still counts here.
   */
  readonly queuedBytesByTable: Record<string, number> = {};
  /** Join catch-ups (catchUp): how many joins we answered, table messages sent directly, push-pulls asked instead. */
  readonly catchUps = { sent: 0, messages: 0, syncs: 0 };

  constructor(private readonly cfg: GossipConfig, private readonly self: string, private readonly host: TablesHost) {}

  /**
   * Queues table news under its key `t:<net>/<table>\0<key>`: the broadcast queue REPLACES a queued
   * message of the same key (memberlist's NamedBroadcast.Invalidates), so a newer version of an entry —
   * ours or relayed — never travels behind its stale predecessor, and N quick rewrites cost one queued message.
   */
  private queueEntry(network: string, tk: string, table: string, local: boolean, bytes: Uint8Array): void {
    this.queuedBytesByTable[table] = (this.queuedBytesByTable[table] ?? 0) + bytes.length;
    this.host.broadcast({ key: `t:${network}/${tk}`, local, network, bytes });
  }

  get lamport(): number {
    return this.clock;
  }
  private tick(seen = 0): number {
    this.clock = Math.max(this.clock, seen) + 1;
    return this.clock;
  }
  private witness(t: number): void {
    if (t > this.clock) this.clock = t;
  }

  joined(network: string, node = this.self): boolean {
    const r = this.nets.get(network)?.get(node);
    return !!r && !r.leave;
  }
  /** Nodes currently on `network` (per our view), sorted. */
  networkNodes(network: string): string[] {
    const out: string[] = [];
    for (const [node, r] of this.nets.get(network) ?? []) if (!r.leave) out.push(node);
    return out.sort();
  }
  /** Networks we are on, sorted. */
  myNetworks(): string[] {
    return [...this.nets.keys()].filter((n) => this.joined(n)).sort();
  }

  private setRecord(network: string, node: string, ltime: number, leave: boolean, now: number): NetRecord | undefined {
    let m = this.nets.get(network);
    if (!m) this.nets.set(network, (m = new Map()));
    const prev = m.get(node);
    m.set(node, { ltime, leave, changedAt: now });
    const lk = network + SEP + node;
    this.leaves.delete(lk);
    if (leave) this.leaves.set(lk, { net: network, node, at: now });
    return prev;
  }
  /**
   * Our join/leave of a network, to everyone: broadcast, and directly to each member in clusters up to
   * DIRECT_FANOUT_MAX_MEMBERS. The members' fan-out and catch-up (fanOut, catchUp) start only once they know we
   * joined: left to the epidemic, a join reached one member of 6 only at its next push-pull (3.1 s) in 1 of 60
   * simulated seeds, and its writes to the joiner waited as long (test/unit/gossip/join-race.test.ts).
   */
  private announce(network: string, ltime: number, leave: boolean): void {
    const bytes = encode({ type: 'network', node: this.self, network, ltime, leave });
    this.host.broadcast({ key: `n:${this.self}/${network}`, bytes, local: true });
    this.host.sendDirectAll(bytes);
  }

  joinNetwork(network: string, now: number): void {
    checkName('network', network, LIMITS.name);
    if (this.joined(network)) return;
    const lt = this.tick();
    this.setRecord(network, this.self, lt, false, now);
    this.announce(network, lt, false);
    this.host.emitTable({ type: 'network-join', node: this.self, network });
    this.host.requestSync(network);
  }

  leaveNetwork(network: string, now: number): void {
    if (!this.joined(network)) return;
    const lt = this.tick();
    this.setRecord(network, this.self, lt, true, now);
    this.announce(network, lt, true);
    this.recentOwn.delete(network);
    this.freshJoiners.delete(network);
    this.dropNetwork(network);
    this.host.emitTable({ type: 'network-leave', node: this.self, network });
  }

  /** We left: forget every entry of the network (we no longer store it), with delete events. */
  private dropNetwork(network: string): void {
    const m = this.entries.get(network);
    if (!m) return;
    this.entries.delete(network);
    for (const [tk, e] of m) {
      if (e.deleted) this.tombs.delete(network + SEP + tk);
      else this.emitEntry('delete', network, tk, e);
    }
  }

  /** Stores an entry and keeps the tombstone index in step. */
  private put(m: Map<string, Entry>, network: string, tk: string, e: Entry): void {
    m.set(tk, e);
    const k = network + SEP + tk;
    this.tombs.delete(k);
    if (e.deleted) this.tombs.set(k, { net: network, tk, at: e.deletedAt });
  }

  private emitEntry(type: TableEvent['type'], network: string, tk: string, e: Entry): void {
    const i = tk.indexOf(SEP);
    this.host.emitTable({ type, network, table: tk.slice(0, i), key: tk.slice(i + 1), value: e.value, owner: e.owner });
  }

  private write(network: string, table: string, key: string, value: Uint8Array, deleted: boolean, now: number): void {
    const lt = this.tick();
    const e: Entry = { value, ltime: lt, owner: this.self, deleted, deletedAt: now };
    const m = this.entries.get(network) ?? new Map<string, Entry>();
    this.entries.set(network, m);
    const tk = table + SEP + key;
    const prev = m.get(tk);
    this.put(m, network, tk, e);
    if (!deleted) this.emitEntry(prev && !prev.deleted ? 'update' : 'create', network, tk, e);
    else if (prev && !prev.deleted) this.emitEntry('delete', network, tk, e);
    const bytes = encode({ type: 'table', network, table, key, value, ltime: lt, owner: this.self, deleted });
    this.queueEntry(network, tk, table, true, bytes);
    const recent = this.recentOwn.get(network) ?? new Map<string, number>();
    this.recentOwn.set(network, recent);
    recent.delete(tk); // re-inserted at the end: the map stays in write order
    recent.set(tk, now);
    this.trimRecent(recent, now);
    this.fanOut(network, bytes, now);
  }

  /**
   * Hands one of our writes to the members of its network directly (besides the broadcast) when the network has
   * at most DIRECT_FANOUT_MAX_MEMBERS members, and always to members that joined it within joinSpreadMs. Why: the
   * epidemic alone leaves a tail. With ≤ 9 members a message is sent retransmitLimit = 4 times and every receiver
   * relays it 4 times to random peers; simulated with 6 lossless nodes, a write missed some member in 2 of 60
   * seeds and reached it only at the next push-pull (2.2–3.5 s with `local`, up to 30 s with `lan`); under churn
   * the send budget is spent and news waits in (or is evicted from) the queue. The direct copy costs M − 1
   * messages against the epidemic's M × retransmitLimit, ≈ 1/retransmitLimit (12–25 %) more table bytes at any M.
   */
  private fanOut(network: string, bytes: Uint8Array, now: number): void {
    const fresh = this.freshJoiners.get(network);
    if (fresh) {
      for (const [node, until] of fresh) if (until <= now) fresh.delete(node);
      if (fresh.size === 0) this.freshJoiners.delete(network);
    }
    const members = this.nets.get(network);
    let count = 0;
    for (const r of members?.values() ?? []) if (!r.leave) count++;
    if (members && count <= DIRECT_FANOUT_MAX_MEMBERS) {
      for (const [node, r] of members) if (!r.leave && node !== this.self) this.host.sendDirect(node, [bytes]);
    } else if (fresh) {
      for (const node of fresh.keys()) this.host.sendDirect(node, [bytes]);
    }
  }

  private trimRecent(recent: Map<string, number>, now: number): void {
    for (const [tk, at] of recent) {
      if (now - at < this.cfg.pushPullIntervalMs) break;
      recent.delete(tk);
    }
  }

  /**
   * Member `node` just joined `network`, which we are on: send it what we wrote there recently. Why (the join
   * race): a joiner push-pulls with ONE member, and a writer piggybacks its news only on packets to peers it
   * already knows are on the network, while its relays do the same. An entry we wrote after that member's
   * snapshot but before we (and the relays) heard of the join spent its transmits on the others and reached the
   * joiner only at a later push-pull — seconds (5 s `local`, 30 s `lan`) of a task missing from DNS and the LB
   * on the joining node (simulated: 16 of 60 seeds, test/unit/gossip/join-race.test.ts). Every owner covers its
   * own entries, so relays need not. News older than a push-pull interval has had an anti-entropy round and is
   * not resent. Newest first; beyond CATCH_UP_MAX_BYTES (or when a direct send is impossible) the joiner gets a
   * push-pull instead.
   * What we write during the next joinSpreadMs also goes to the joiner directly (fanOut), besides the
   * broadcast: until the join's news has spread, our relays may not know the joiner either, and our own few
   * transmits land on random members (simulated with 4 nodes joining at once: 7 of 60 seeds still missed a
   * write for 0.7–4.9 s with the catch-up alone).
   */
  private catchUp(node: string, network: string, now: number): void {
    const recent = this.recentOwn.get(network);
    const m = this.entries.get(network);
    if (!recent || !m || recent.size === 0) return;
    this.trimRecent(recent, now);
    const msgs: Uint8Array[] = [];
    let bytes = 0;
    let truncated = false;
    for (const tk of [...recent.keys()].reverse()) {
      const e = m.get(tk);
      if (!e || e.owner !== this.self) continue;
      const i = tk.indexOf(SEP);
      const b = encode({ type: 'table', network, table: tk.slice(0, i), key: tk.slice(i + 1), value: e.value, ltime: e.ltime, owner: e.owner, deleted: e.deleted });
      if (bytes + b.length > CATCH_UP_MAX_BYTES) {
        truncated = true;
        break;
      }
      msgs.push(b);
      bytes += b.length;
    }
    if (msgs.length === 0 && !truncated) return;
    this.catchUps.sent++;
    this.catchUps.messages += msgs.length;
    if (msgs.length > 0 && !this.host.sendDirect(node, msgs)) truncated = true;
    if (truncated) {
      this.catchUps.syncs++;
      this.host.syncWith(node);
    }
  }

  tableSet(network: string, table: string, key: string, value: Uint8Array, now: number): void {
    checkName('table', table, LIMITS.name);
    checkName('key', key, LIMITS.key);
    if (value.length > LIMITS.value) throw new MeshError('MESHD_BAD_ARGUMENT', `value must be ≤ ${LIMITS.value} bytes`);
    if (!this.joined(network)) throw new MeshError('MESHD_NOT_FOUND', `not on network ${network}`, { network });
    this.write(network, table, key, value.slice(), false, now);
  }

  tableDelete(network: string, table: string, key: string, now: number): boolean {
    if (!this.joined(network)) throw new MeshError('MESHD_NOT_FOUND', `not on network ${network}`, { network });
    const cur = this.entries.get(network)?.get(table + SEP + key);
    if (!cur || cur.deleted) return false;
    this.write(network, table, key, EMPTY, true, now);
    return true;
  }

  tableGet(network: string, table: string, key: string): { value: Uint8Array; owner: string; ltime: number } | undefined {
    const e = this.entries.get(network)?.get(table + SEP + key);
    return e && !e.deleted ? { value: e.value, owner: e.owner, ltime: e.ltime } : undefined;
  }

  /** Live entries of a network (optionally one table), sorted by table then key. */
  tableEntries(network: string, table?: string): { table: string; key: string; value: Uint8Array; owner: string; ltime: number }[] {
    const out: { table: string; key: string; value: Uint8Array; owner: string; ltime: number }[] = [];
    for (const [tk, e] of this.entries.get(network) ?? []) {
      if (e.deleted) continue;
      const i = tk.indexOf(SEP);
      const t = tk.slice(0, i);
      if (table !== undefined && t !== table) continue;
      out.push({ table: t, key: tk.slice(i + 1), value: e.value, owner: e.owner, ltime: e.ltime });
    }
    return out.sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Applies a table event (broadcast or push-pull). Returns true when it changed our state. */
  applyEntry(w: TableEntryWire, now: number, rebroadcast: boolean): boolean {
    this.witness(w.ltime);
    if (!this.joined(w.network)) return false;
    const tk = w.table + SEP + w.key;
    const m = this.entries.get(w.network) ?? new Map<string, Entry>();
    const cur = m.get(tk);
    const wins = !cur || w.ltime > cur.ltime || (w.ltime === cur.ltime && w.owner > cur.owner);
    if (!wins) return false;
    if (w.owner === this.self) {
      // News of our own entry newer than what we hold can only come from before a restart (our clock
      // started again at 0). If we wrote the key since (an adopted task re-published before the stale
      // copy reached us), what we hold is the truth: re-assert it, newer. Deleting it here (or taking
      // the old tombstone) lost live endpoint records after staggered restarts (cluster-faults).
      if (cur && cur.owner === this.self) {
        this.entries.set(w.network, m);
        this.write(w.network, w.table, w.key, cur.value, cur.deleted, now);
        return true;
      }
      // Live news about our own entry that we do not hold (we restarted): re-assert it deleted, newer.
      if (!w.deleted) {
        this.entries.set(w.network, m);
        this.write(w.network, w.table, w.key, EMPTY, true, now);
        return true;
      }
    } else {
      // Only owners we know as members: a record about an unknown node (dead before we joined, say) would
      // never be purged here, because news of that node's death is ignored by whoever never knew it.
      const os = this.host.memberState(w.owner);
      if (os !== 'alive' && os !== 'suspect') return false;
      const rec = this.nets.get(w.network)?.get(w.owner);
      if (rec && rec.leave && rec.ltime > w.ltime) return false;
    }
    const e: Entry = { value: w.deleted ? EMPTY : w.value, ltime: w.ltime, owner: w.owner, deleted: w.deleted, deletedAt: now };
    this.entries.set(w.network, m);
    this.put(m, w.network, tk, e);
    if (w.deleted) {
      if (cur && !cur.deleted) this.emitEntry('delete', w.network, tk, e);
    } else {
      this.emitEntry(cur && !cur.deleted ? 'update' : 'create', w.network, tk, e);
    }
    if (rebroadcast) {
      this.queueEntry(w.network, tk, w.table, false, encode({ type: 'table', ...w }));
    }
    return true;
  }

  /** Applies a network membership record. Returns true when it changed our state. */
  applyNetwork(r: NetworkRecordWire, now: number, rebroadcast: boolean): boolean {
    this.witness(r.ltime);
    if (r.node === this.self) {
      const mine = this.nets.get(r.network)?.get(this.self);
      if (mine && mine.ltime >= r.ltime) return false;
      if (!mine && r.leave) return false;
      // Stale news about us (restart): re-assert our actual state, newer.
      const joinedNow = !!mine && !mine.leave;
      const lt = this.tick();
      this.setRecord(r.network, this.self, lt, !joinedNow, now);
      this.announce(r.network, lt, !joinedNow);
      return true;
    }
    const ns = this.host.memberState(r.node);
    if (ns !== 'alive' && ns !== 'suspect') return false;
    const cur = this.nets.get(r.network)?.get(r.node);
    if (cur && cur.ltime >= r.ltime) return false;
    this.setRecord(r.network, r.node, r.ltime, r.leave, now);
    if (r.leave) {
      this.freshJoiners.get(r.network)?.delete(r.node);
      this.purgeOwner(r.node, r.network);
      if (cur && !cur.leave) this.host.emitTable({ type: 'network-leave', node: r.node, network: r.network });
    } else if (!cur || cur.leave) {
      this.host.emitTable({ type: 'network-join', node: r.node, network: r.network });
      if (this.joined(r.network)) {
        this.catchUp(r.node, r.network, now);
        const fresh = this.freshJoiners.get(r.network) ?? new Map<string, number>();
        this.freshJoiners.set(r.network, fresh);
        fresh.set(r.node, now + this.host.joinSpreadMs());
      }
    }
    if (rebroadcast) {
      this.host.broadcast({ key: `n:${r.node}/${r.network}`, local: false, bytes: encode({ type: 'network', ...r }) });
    }
    return true;
  }

  /** Removes (no tombstone) the entries `owner` wrote, in one network or all, with delete events. */
  private purgeOwner(owner: string, network?: string): void {
    for (const [net, m] of this.entries) {
      if (network !== undefined && net !== network) continue;
      for (const [tk, e] of m) {
        if (e.owner !== owner) continue;
        m.delete(tk);
        if (e.deleted) this.tombs.delete(net + SEP + tk);
        if (!e.deleted) this.emitEntry('delete', net, tk, e);
      }
    }
  }

  /** A member died or left the cluster: its network records and entries go. */
  memberDown(name: string): void {
    for (const fresh of this.freshJoiners.values()) fresh.delete(name);
    for (const [net, m] of this.nets) {
      const r = m.get(name);
      if (!r) continue;
      m.delete(name);
      this.leaves.delete(net + SEP + name);
      if (!r.leave) this.host.emitTable({ type: 'network-leave', node: name, network: net });
    }
    this.purgeOwner(name);
  }

  /**
   * Reaps tombstones and network-leave records older than tombstoneReapMs; returns how many. Walks the
   * indexes from the oldest and stops at the first one still young: O(reaped), not O(entries).
   */
  reap(now: number): number {
    let n = 0;
    for (const [k, t] of this.tombs) {
      if (now - t.at < this.cfg.tombstoneReapMs) break;
      this.tombs.delete(k);
      const m = this.entries.get(t.net);
      if (m?.get(t.tk)?.deleted) (m.delete(t.tk), n++);
    }
    for (const [k, r] of this.leaves) {
      if (now - r.at < this.cfg.tombstoneReapMs) break;
      if (r.node === this.self) continue; // our own leave record stays (it answers stale news about us)
      this.leaves.delete(k);
      const m = this.nets.get(r.net);
      if (m?.get(r.node)?.leave) (m.delete(r.node), n++);
    }
    return n;
  }

  /** Our full table state for push-pull: every network record, and entries (with tombstones) of our networks. */
  snapshot(): { networks: NetworkRecordWire[]; entries: TableEntryWire[] } {
    const networks: NetworkRecordWire[] = [];
    for (const [network, m] of this.nets) for (const [node, r] of m) networks.push({ node, network, ltime: r.ltime, leave: r.leave });
    const entries: TableEntryWire[] = [];
    for (const [network, m] of this.entries) {
      if (!this.joined(network)) continue;
      for (const [tk, e] of m) {
        const i = tk.indexOf(SEP);
        entries.push({ network, table: tk.slice(0, i), key: tk.slice(i + 1), value: e.value, ltime: e.ltime, owner: e.owner, deleted: e.deleted });
      }
    }
    return { networks, entries };
  }

  /** Merges a peer's push-pull table state (records first, so entry acceptance sees them). */
  merge(s: { networks: readonly NetworkRecordWire[]; entries: readonly TableEntryWire[] }, now: number): void {
    for (const r of s.networks) this.applyNetwork(r, now, false);
    for (const e of s.entries) this.applyEntry(e, now, false);
  }
}
