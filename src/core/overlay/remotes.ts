/**
 * The overlay's view of remote endpoints, with the dead-member grace (pure; time injected).
 * The agent's overlay shell feeds it the `endpoints` table events and membership changes it
 * reads from gossip, calls `tick(now)` at `nextDeadline()`, and hands what `drain()` returns to
 * the netlink reconcile (core/overlay/state.ts events) in one batch.
 *
 * Why a grace. When gossip declares a node dead its table entries are deleted at once. An agent
 * that was SIGKILLed and restarts in a few seconds looks exactly like that, while its tasks never
 * stopped. Removals caused by a member's death (not by a graceful leave or a delete by the owner)
 * are therefore held for `deadGraceMs`, and the dead member stays in the VXLAN guard's allow-list
 * for as long: if it comes back and republishes, nothing was ever removed. The cost: for
 * deadGraceMs, packets to a really dead node go nowhere. A graceful leave flushes at once.
 *
 * Records are validated here (decodeEndpoint): a bad one is reported as a `bad-record` action
 * (the shell logs it and the count shows in the status) and never applied; records of this node
 * and records naming another network than the table they sit in are not remote endpoints.
 */
import { decodeEndpoint } from '../endpoints.js';
import { hostOfAddr } from '../hostport.js';
import type { RemoteEndpoint } from './model.js';

/** Member states as gossip reports them (core/gossip MemberState). */
export type GuardMemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface RemotesConfig {
  /** This node: its own records are not remote endpoints. */
  nodeName: string;
  /** How long removals caused by a member's death are held back (ms). */
  deadGraceMs: number;
}

/** Covers an agent restart under the `local` and `lan` presets' failure detection. */
export const DEFAULT_DEAD_GRACE_MS = 15_000;

export type RemotesEvent =
  /** An `endpoints` record created or updated (raw bytes: validated here). */
  | { type: 'entry-set'; network: string; key: string; owner: string; value: Uint8Array }
  /**
   * An `endpoints` record deleted. `ownerDead`: gossip holds its owner (`owner(network, key)`)
   * as dead now — covers a death this machine has not been told about as an event yet.
   */
  | { type: 'entry-delete'; network: string; key: string; ownerDead: boolean }
  /** Any membership change; `dead` starts the member's grace, `alive` ends it, `left` flushes it. */
  | { type: 'member'; name: string; change: 'dead' | 'alive' | 'left' | 'other' }
  /** This node stopped hosting the network: its remotes go, held or not. */
  | { type: 'network-forget'; network: string };

export type RemotesAction =
  | { type: 'remote-add'; key: string; endpoint: RemoteEndpoint }
  | { type: 'remote-remove'; key: string }
  /** The guard's allow-list may have changed: recompute it with `guardAllow`. */
  | { type: 'members-changed' }
  | { type: 'bad-record'; network: string; key: string; owner: string; reason: string };

/** Remote key: gossip network + table key (the same table key may appear in two networks). */
export const remoteKey = (network: string, key: string): string => `${network}/${key}`;

/** A member's underlay IP from its gossip address (`ip:port` or `[ipv6]:port`). */
const ipOf = hostOfAddr;

export class RemoteTable {
  private readonly remote = new Map<string, RemoteEndpoint & { owner: string }>();
  /** remote key → time its removal takes effect (owner declared dead). */
  private readonly pendingRemoval = new Map<string, number>();
  /** member name → time it was declared dead. */
  private readonly deadAt = new Map<string, number>();
  private readonly badCounts = new Map<string, number>();
  private readonly out: RemotesAction[] = [];

  constructor(private readonly cfg: RemotesConfig) {}

  handle(ev: RemotesEvent, now: number): void {
    switch (ev.type) {
      case 'entry-set':
        return this.set(ev.network, ev.key, ev.owner, ev.value);
      case 'entry-delete':
        return this.delete(remoteKey(ev.network, ev.key), ev.ownerDead, now);
      case 'member':
        if (ev.change === 'dead') this.deadAt.set(ev.name, now);
        else if (ev.change === 'alive' || ev.change === 'left') this.deadAt.delete(ev.name);
        if (ev.change === 'left') this.flushOwner(ev.name);
        this.out.push({ type: 'members-changed' });
        return;
      case 'network-forget':
        for (const [k, e] of this.remote) {
          if (e.network !== ev.network) continue;
          this.remote.delete(k);
          this.pendingRemoval.delete(k);
        }
        return;
    }
  }

  /** Applies removals and guard changes whose grace has passed. */
  tick(now: number): void {
    for (const [k, due] of this.pendingRemoval) {
      if (due > now) continue;
      this.pendingRemoval.delete(k);
      this.remote.delete(k);
      this.out.push({ type: 'remote-remove', key: k });
    }
    let expired = false;
    for (const [name, t] of this.deadAt) {
      if (t + this.cfg.deadGraceMs > now) continue;
      this.deadAt.delete(name);
      expired = true;
    }
    if (expired) this.out.push({ type: 'members-changed' });
  }

  /** Earliest time `tick` has something to do; null when nothing is held. */
  nextDeadline(): number | null {
    let d: number | null = null;
    for (const t of this.pendingRemoval.values()) if (d === null || t < d) d = t;
    for (const t of this.deadAt.values()) if (d === null || t + this.cfg.deadGraceMs < d) d = t + this.cfg.deadGraceMs;
    return d;
  }

  drain(): RemotesAction[] {
    return this.out.splice(0);
  }

  /** Owner of the remote endpoint under that table key, if held. */
  owner(network: string, key: string): string | undefined {
    return this.remote.get(remoteKey(network, key))?.owner;
  }

  /** Every remote endpoint held (including those whose removal is pending), by remote key. */
  entries(): Array<[string, RemoteEndpoint]> {
    return [...this.remote].map(([k, { network, ip, ip6, mac, nodeIp }]) => [k, { network, ip, ...(ip6 !== undefined ? { ip6 } : {}), mac, nodeIp }]);
  }

  get size(): number {
    return this.remote.size;
  }

  /** Removals held back by the grace. */
  get pending(): number {
    return this.pendingRemoval.size;
  }

  /** Bad records seen, by reason. */
  badRecords(): Record<string, number> {
    return Object.fromEntries(this.badCounts);
  }

  /**
   * The VXLAN guard's allow-list: underlay addresses (`ip:port` → ip) of live members (alive or
   * suspect) plus members dead for less than deadGraceMs; sorted, without duplicates.
   */
  guardAllow(members: ReadonlyArray<{ name: string; addr: string; state: GuardMemberState }>, now: number): string[] {
    const out = new Set<string>();
    for (const m of members) {
      const dead = this.deadAt.get(m.name);
      if (m.state === 'alive' || m.state === 'suspect' || (m.state === 'dead' && dead !== undefined && now < dead + this.cfg.deadGraceMs)) out.add(ipOf(m.addr));
    }
    return [...out].sort();
  }

  private set(network: string, key: string, owner: string, value: Uint8Array): void {
    if (owner === this.cfg.nodeName) return;
    const d = decodeEndpoint(value);
    if (!d.ok) {
      this.bad(d.reason);
      this.out.push({ type: 'bad-record', network, key, owner, reason: d.reason });
      return;
    }
    const r = d.record;
    if (r.network !== network) {
      this.bad('endpoint-network');
      return;
    }
    if (r.node === this.cfg.nodeName) return;
    const k = remoteKey(network, key);
    this.pendingRemoval.delete(k);
    const endpoint: RemoteEndpoint = { network, ip: r.ip, ...(r.ip6 !== undefined ? { ip6: r.ip6 } : {}), mac: r.mac, nodeIp: r.nodeIp };
    this.remote.set(k, { ...endpoint, owner });
    this.out.push({ type: 'remote-add', key: k, endpoint });
  }

  private delete(k: string, ownerDead: boolean, now: number): void {
    const cur = this.remote.get(k);
    if (!cur) return;
    let died = this.deadAt.get(cur.owner);
    if (died === undefined && ownerDead) {
      died = now;
      this.deadAt.set(cur.owner, died);
    }
    if (died !== undefined) {
      // Held: the removal takes effect when the owner's grace ends (a re-set cancels it).
      this.pendingRemoval.set(k, died + this.cfg.deadGraceMs);
      return;
    }
    this.remote.delete(k);
    this.out.push({ type: 'remote-remove', key: k });
  }

  private flushOwner(name: string): void {
    for (const [k, e] of this.remote) {
      if (e.owner !== name || !this.pendingRemoval.has(k)) continue;
      this.pendingRemoval.delete(k);
      this.remote.delete(k);
      this.out.push({ type: 'remote-remove', key: k });
    }
  }

  private bad(reason: string): void {
    this.badCounts.set(reason, (this.badCounts.get(reason) ?? 0) + 1);
  }
}
