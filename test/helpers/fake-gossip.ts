/**
 * In-memory gossip for agent unit tests, written once (it was copied into four test files).
 *
 * - `FakeGossip`: one node's view — the networks it joined, its tables (every table, with each
 *   entry's owner), its members — behind the agent's GossipPort. Tests inject events (`emit`) and
 *   remote records (`set`/`del`, which also fire the table events as the real node does).
 *   `tableDelete` off a network throws, as the real tables do.
 * - `FakeGossipBus` / `FakeGossipNode`: several nodes sharing one instantly replicated copy of
 *   each network's tables; events are queued per member and delivered on `pump` (as the real
 *   subsystem flushes them), a killed node is declared dead to every other.
 */
import assert from 'node:assert/strict';
import { ENDPOINT_TABLE, decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../src/core/endpoints.js';
import type { GossipEvent, MemberState } from '../../src/core/gossip/index.js';
import type { GossipPort } from '../../src/agent/overlay/overlay.js';

export interface FakeMember {
  name: string;
  addr: string;
  state: MemberState;
  incarnation: number;
}

export interface FakeEntry {
  table: string;
  value: Uint8Array;
  owner: string;
}

export class FakeGossip implements GossipPort {
  readonly listeners: Array<(ev: GossipEvent) => void> = [];
  /** network → key → entry (keys are unique across tables in these tests: endpoints are task ids). */
  readonly tables = new Map<string, Map<string, FakeEntry>>();
  readonly joined = new Set<string>();
  /** Every state this node published an endpoint record with, in order: [key, state]. */
  readonly history: Array<[string, string]> = [];
  membersList: FakeMember[];
  readonly core: GossipPort['core'];

  constructor(readonly nodeName = 'n1', addr = '10.99.1.1:7946') {
    this.membersList = [{ name: nodeName, addr, state: 'alive', incarnation: 1 }];
    this.core = {
      members: () => this.membersList.map((m) => ({ ...m })),
      member: (n: string) => this.membersList.find((m) => m.name === n),
      networks: () => [...this.joined].sort(),
      networkNodes: (net: string) => (this.joined.has(net) ? [this.nodeName] : []),
      tableEntries: (net: string, table?: string) => [...(this.tables.get(net) ?? [])]
        .filter(([, e]) => table === undefined || e.table === table)
        .map(([key, e]) => ({ table: e.table, key, value: e.value, owner: e.owner, ltime: 1 })),
      joinNetwork: (net: string) => void this.joined.add(net),
      leaveNetwork: (net: string) => {
        this.joined.delete(net);
        this.tables.delete(net);
      },
      tableSet: (net: string, table: string, key: string, value: Uint8Array) => {
        this.put(net, key, { table, value, owner: this.nodeName });
        const d = table === ENDPOINT_TABLE ? decodeEndpoint(value) : undefined;
        if (d?.ok) this.history.push([key, d.record.state]);
      },
      tableDelete: (net: string, _table: string, key: string) => {
        if (!this.joined.has(net)) throw new Error(`not on network ${net}`); // as the real tables do
        return this.tables.get(net)?.delete(key) ?? false;
      },
    } as unknown as GossipPort['core'];
  }

  private put(net: string, key: string, e: FakeEntry): 'create' | 'update' {
    let t = this.tables.get(net);
    if (!t) this.tables.set(net, (t = new Map()));
    const type = t.has(key) ? 'update' : 'create';
    t.set(key, e);
    return type;
  }

  onEvent(l: (ev: GossipEvent) => void): void {
    this.listeners.push(l);
  }
  pump(): void {}
  emit(ev: GossipEvent): void {
    for (const l of this.listeners) l(ev);
  }

  /** A record arriving from `owner` (default its node): stored in `endpoints` and announced. `raw` replaces the encoding. */
  set(r: EndpointRecord, owner = r.node, raw?: Uint8Array): void {
    const value = raw ?? encodeEndpoint(r);
    this.joined.add(r.network);
    const type = this.put(r.network, r.taskId, { table: ENDPOINT_TABLE, value, owner });
    this.emit({ type, network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value, owner });
  }

  /** A record deleted by its owner: gone from the table and announced. */
  del(r: EndpointRecord): void {
    const e = this.tables.get(r.network)?.get(r.taskId);
    this.tables.get(r.network)?.delete(r.taskId);
    this.emit({ type: 'delete', network: r.network, table: ENDPOINT_TABLE, key: r.taskId, value: e?.value ?? new Uint8Array(), owner: e?.owner ?? r.node });
  }

  /** The decoded endpoint record `key` on `net` (asserts it decodes), undefined when absent. */
  record(net: string, key: string): EndpointRecord | undefined {
    const e = this.tables.get(net)?.get(key);
    if (!e) return undefined;
    const d = decodeEndpoint(e.value);
    assert.ok(d.ok, `record ${net}/${key} does not decode`);
    return d.record;
  }

  /** The published state of endpoint `key` on `net` (default net1). */
  state(key: string, net = 'net1'): string | undefined {
    return this.record(net, key)?.state;
  }
}

interface BusEntry {
  value: Uint8Array;
  owner: string;
}

/** Several nodes on one instantly replicated table store. */
export class FakeGossipBus {
  readonly nodes = new Map<string, FakeGossipNode>();
  /** network → members */
  readonly nets = new Map<string, Set<string>>();
  /** network → `${table}\0${key}` → entry (one replicated copy: delivery is instant) */
  readonly data = new Map<string, Map<string, BusEntry>>();
  readonly states = new Map<string, MemberState>();
  node(name: string): FakeGossipNode {
    const n = new FakeGossipNode(this, name);
    this.nodes.set(name, n);
    this.states.set(name, 'alive');
    return n;
  }
  join(net: string, ...names: string[]): void {
    const m = this.nets.get(net) ?? new Set<string>();
    for (const n of names) m.add(n);
    this.nets.set(net, m);
  }
  /** Queues an event for every member of `net` (delivered on the next pump). */
  fire(net: string, ev: GossipEvent): void {
    for (const n of this.nets.get(net) ?? []) this.nodes.get(n)?.queue.push(ev);
  }
  write(owner: string, net: string, table: string, key: string, value: Uint8Array | null): boolean {
    const m = this.data.get(net) ?? new Map<string, BusEntry>();
    this.data.set(net, m);
    const k = `${table}\0${key}`;
    const prev = m.get(k);
    if (value === null) {
      if (!prev) return false;
      m.delete(k);
      this.fire(net, { type: 'delete', network: net, table, key, value: new Uint8Array(), owner });
      return true;
    }
    m.set(k, { value, owner });
    this.fire(net, { type: prev ? 'update' : 'create', network: net, table, key, value, owner });
    return true;
  }
  kill(name: string): void {
    this.states.set(name, 'dead');
    for (const m of this.nets.values()) m.delete(name);
    for (const n of this.nodes.values()) n.queue.push({ type: 'member-dead', name, addr: '', incarnation: 1 });
    this.pumpAll();
  }
  pumpAll(): void {
    for (const n of this.nodes.values()) n.pump();
  }
}

export class FakeGossipNode implements GossipPort {
  readonly queue: GossipEvent[] = [];
  private readonly listeners: Array<(ev: GossipEvent) => void> = [];
  readonly core: GossipPort['core'];
  constructor(private readonly bus: FakeGossipBus, readonly name: string) {
    const b = bus;
    this.core = {
      members: () => [...b.states].map(([n, state]) => ({ name: n, addr: '', state, incarnation: 1 })),
      member: (n: string) => (b.states.has(n) ? { name: n, addr: '', state: b.states.get(n)!, incarnation: 1 } : undefined),
      networks: () => [...b.nets].filter(([, m]) => m.has(name)).map(([n]) => n).sort(),
      networkNodes: (net: string) => [...(b.nets.get(net) ?? [])].sort(),
      tableEntries: (net: string, table?: string) => [...(b.data.get(net) ?? [])]
        .map(([k, e]) => ({ table: k.split('\0')[0]!, key: k.split('\0')[1]!, value: e.value, owner: e.owner, ltime: 1 }))
        .filter((e) => table === undefined || e.table === table),
      joinNetwork: (net: string) => b.join(net, name),
      leaveNetwork: () => undefined,
      tableSet: (net: string, table: string, key: string, value: Uint8Array) => {
        if (!b.nets.get(net)?.has(name)) throw new Error(`not on ${net}`);
        b.write(name, net, table, key, value);
      },
      tableDelete: (net: string, table: string, key: string) => b.write(name, net, table, key, null),
    } as unknown as GossipPort['core'];
  }
  onEvent(l: (ev: GossipEvent) => void): void {
    this.listeners.push(l);
  }
  pump(): void {
    // Like the real subsystem: a pump on any node flushes; deliver everywhere (instant network).
    for (const n of this.bus.nodes.values()) n.flush();
  }
  flush(): void {
    while (this.queue.length) {
      const ev = this.queue.shift()!;
      for (const l of this.listeners) l(ev);
    }
  }
}
