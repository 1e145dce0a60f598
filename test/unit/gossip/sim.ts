/**
 * Deterministic discrete-event simulator for GossipNode: an in-memory network with seeded latency and loss,
 * partitions, UDP-only blocks, killed (SIGKILL-like) and paused (SIGSTOP-like) nodes. Time is simulated:
 * nodes are ticked exactly at their nextDeadline(), packets are delivered after a latency, nothing sleeps.
 */
import { seededRng, type Rng } from '../../../src/core/clock.js';
import type { GossipConfig } from '../../../src/core/gossip/config.js';
import { GossipNode, type GossipEvent } from '../../../src/core/gossip/index.js';

interface Ev {
  at: number;
  seq: number;
  run: () => void;
}

/** Binary min-heap on (at, seq). */
class Heap {
  private a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Ev | undefined {
    return this.a[0];
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, e)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = e;
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (!top || !last || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && less(a[r]!, a[l]!) ? r : l;
      if (less(last, a[c]!)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
function less(x: Ev, y: Ev): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

export interface SimNode {
  name: string;
  addr: string;
  node: GossipNode;
  killed: boolean;
  paused: boolean;
  held: (() => void)[];
  scheduled: number;
  group: number;
  /** With a CPU model: when this node's (single-threaded) event loop is free again. */
  busyUntil: number;
}

export interface SimOptions {
  seed: number;
  config: GossipConfig;
  /** UDP loss probability per datagram, 0..1. */
  loss?: number;
  latencyMinMs?: number;
  latencyMaxMs?: number;
  /**
   * A CPU model: every input (datagram, stream request or reply, timer tick) occupies the node's one event loop
   * for perInputMs + perKiBMs per KiB of input, inputs queue behind each other (FIFO) and what an input produces
   * leaves when its processing ends. Absent: processing is instantaneous (the protocol alone).
   */
  cpu?: { perInputMs: number; perKiBMs: number };
}

export class Sim {
  now = 0;
  readonly nodes = new Map<string, SimNode>();
  private readonly byAddr = new Map<string, SimNode>();
  private readonly heap = new Heap();
  private seq = 0;
  private readonly rng: Rng;
  loss: number;
  udpBlocked = false;
  /** Nodes whose UDP is blocked both ways (a per-node `labBlock --proto udp`); streams still pass. */
  readonly udpBlockedNodes = new Set<string>();
  delivered = 0;
  dropped = 0;
  /** Traffic sent, for per-member rates: UDP datagrams and their bytes, stream exchanges and their bytes (request + reply). */
  readonly sent = { udp: 0, udpBytes: 0, streams: 0, streamBytes: 0 };
  /** Called for every event a node emits. */
  onEvent: ((node: string, ev: GossipEvent, now: number) => void) | undefined;
  private readonly latMin: number;
  private readonly latMax: number;

  constructor(private readonly o: SimOptions) {
    this.rng = seededRng(o.seed);
    this.loss = o.loss ?? 0;
    this.latMin = o.latencyMinMs ?? 1;
    this.latMax = o.latencyMaxMs ?? 5;
  }

  private at(t: number, run: () => void): void {
    this.heap.push({ at: t, seq: this.seq++, run });
  }
  private latency(): number {
    return this.latMin + this.rng() * (this.latMax - this.latMin);
  }

  /** A new node; `addr` reuses an address (a restarted process on the same host). */
  add(name: string, config: GossipConfig = this.o.config, addr?: string): SimNode {
    const i = this.nodes.size + this.seq;
    addr ??= `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946#${name}`;
    const node = new GossipNode({ name, addr, config, rng: seededRng(this.o.seed * 7919 + i), now: this.now });
    const s: SimNode = { name, addr, node, killed: false, paused: false, held: [], scheduled: Infinity, group: 0, busyUntil: 0 };
    this.nodes.set(name, s);
    this.byAddr.set(addr, s);
    this.flush(s);
    return s;
  }
  get(name: string): SimNode {
    const s = this.nodes.get(name);
    if (!s) throw new Error(`no node ${name}`);
    return s;
  }
  live(): SimNode[] {
    return [...this.nodes.values()].filter((s) => !s.killed);
  }

  /** Runs `fn` against a node now and sends what it produced. */
  act(name: string, fn: (n: GossipNode, now: number) => void): void {
    const s = this.get(name);
    fn(s.node, this.now);
    this.flush(s);
  }
  join(name: string, seeds: string[]): void {
    this.act(name, (n, now) => n.join(seeds.map((x) => this.get(x).addr), now));
  }
  /** Kills `name` and starts a fresh process under the same name (new address, empty state). */
  restart(name: string): SimNode {
    const old = this.get(name);
    old.killed = true;
    this.nodes.delete(name);
    return this.add(name, this.o.config, old.addr);
  }
  kill(name: string): void {
    this.get(name).killed = true;
  }
  pause(name: string): void {
    this.get(name).paused = true;
  }
  resume(name: string): void {
    const s = this.get(name);
    s.paused = false;
    const held = s.held.splice(0);
    for (const f of held) f();
    s.scheduled = Infinity;
    this.flush(s);
  }
  /** Splits the cluster: nodes in group i can only talk to nodes in group i. Unlisted nodes: group 0. */
  partition(groups: string[][]): void {
    for (const s of this.nodes.values()) s.group = 0;
    groups.forEach((g, i) => g.forEach((n) => (this.get(n).group = i)));
  }
  heal(): void {
    for (const s of this.nodes.values()) s.group = 0;
  }

  private reachable(a: SimNode, b: SimNode): boolean {
    return !b.killed && a.group === b.group;
  }

  /** Runs `f` on node s, or holds it while s is paused (a stopped process keeps its socket buffer). */
  private onNode(s: SimNode, f: () => void): void {
    if (s.killed) return;
    if (s.paused) s.held.push(f);
    else f();
  }

  /** Runs `f` on node s after its event loop has processed `bytes` of input (CPU model), or at once. */
  private work(s: SimNode, bytes: number, f: () => void): void {
    const c = this.o.cpu;
    if (!c) return this.onNode(s, f);
    const start = Math.max(this.now, s.busyUntil);
    s.busyUntil = start + c.perInputMs + (c.perKiBMs * bytes) / 1024;
    this.at(s.busyUntil, () => this.onNode(s, f));
  }

  private flush(s: SimNode): void {
    if (s.killed) return;
    const evs = s.node.drainEvents();
    if (this.onEvent) for (const e of evs) this.onEvent(s.name, e, this.now);
    for (const o of s.node.drain()) {
      const to = this.byAddr.get(o.to);
      if (o.kind === 'udp') {
        this.sent.udp++;
        this.sent.udpBytes += o.bytes.length;
        if (!to || !this.reachable(s, to) || this.udpBlocked || this.udpBlockedNodes.has(s.name) || this.udpBlockedNodes.has(to.name) || this.rng() < this.loss) {
          this.dropped++;
          continue;
        }
        const bytes = o.bytes;
        const from = s.addr;
        this.at(this.now + this.latency(), () => this.work(to, bytes.length, () => {
          this.delivered++;
          to.node.handlePacket(from, bytes, this.now);
          this.flush(to);
        }));
      } else {
        const id = o.id;
        const frameBytes = (fs: Uint8Array[]): number => fs.reduce((n, f) => n + f.length, 0);
        this.sent.streams++;
        this.sent.streamBytes += frameBytes(o.frames);
        const reply = (bytes: Uint8Array[] | null, after: number): void =>
          this.at(this.now + after, () => this.work(s, bytes ? frameBytes(bytes) : 0, () => {
            s.node.handleStreamResponse(id, bytes, this.now);
            this.flush(s);
          }));
        if (!to || to.killed) {
          reply(null, this.latency()); // connection refused
        } else if (!this.reachable(s, to) || to.paused) {
          reply(null, s.node.config.tcpTimeoutMs); // no answer: timeout
        } else {
          const bytes = o.frames;
          const serve = (): void => {
            if (to.killed || to.paused || !this.reachable(s, to)) return reply(null, s.node.config.tcpTimeoutMs);
            const r = to.node.handleStreamRequest(s.addr, bytes, this.now);
            this.sent.streamBytes += frameBytes(r);
            this.flush(to);
            reply(r.length ? r : null, this.latency());
          };
          this.at(this.now + this.latency(), () => (this.o.cpu ? this.work(to, frameBytes(bytes), serve) : serve()));
        }
      }
    }
    this.schedule(s);
  }

  private schedule(s: SimNode): void {
    const d = Math.max(this.now, s.node.nextDeadline());
    if (d >= s.scheduled || !Number.isFinite(d)) return;
    s.scheduled = d;
    this.at(d, () => {
      if (s.scheduled !== d || s.killed || s.paused) return;
      const run = (): void => {
        s.scheduled = Infinity;
        s.node.tick(this.now);
        this.flush(s);
      };
      if (this.o.cpu) this.work(s, 0, run);
      else run();
    });
  }

  /** Advances simulated time to `t`, processing everything due. */
  runUntil(t: number): void {
    for (;;) {
      const e = this.heap.peek();
      if (!e || e.at > t) break;
      this.heap.pop();
      this.now = Math.max(this.now, e.at);
      e.run();
    }
    this.now = Math.max(this.now, t);
    for (const s of this.nodes.values()) if (!s.killed && !s.paused) this.schedule(s);
  }
  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }
  /** Runs in steps of `stepMs` until pred() holds; returns the time it held, or undefined after maxMs. */
  runUntilTrue(pred: () => boolean, maxMs: number, stepMs = 50): number | undefined {
    const end = this.now + maxMs;
    while (this.now < end) {
      if (pred()) return this.now;
      this.runUntil(Math.min(end, this.now + stepMs));
    }
    return pred() ? this.now : undefined;
  }
}
