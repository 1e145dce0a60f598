/**
 * The endpoint-codec gate at the gossip edge, shared by the writers of endpoint records (the worker's task
 * records, agent/worker/mesh.ts; the LB's ingress records, agent/lb/ingress-records.ts): a node says in
 * ENDPOINT_CODEC_TABLE on a network which encodings it reads, and writes compact records there only while every
 * node on the network has said it reads them (core/endpoints.ts compactAllowed; a node whose word has not
 * arrived counts as one that does not). CodecRegate rewrites what a writer wrote when that changes.
 */
import { compactAllowed, ENDPOINT_CODEC_TABLE, ENDPOINT_CODECS, type EndpointEncoding } from '../../core/endpoints.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { GossipPort } from '../overlay/overlay.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The encoding `self` may write endpoint records in on `network` now. */
export function allowedEncoding(core: GossipPort['core'], network: string, self: string): EndpointEncoding {
  const codecs = new Map(core.tableEntries(network, ENDPOINT_CODEC_TABLE).map((e) => [e.key, dec.decode(e.value)]));
  const nodes = new Set([...core.networkNodes(network), self]);
  return compactAllowed([...nodes], codecs) ? 'compact' : 'json';
}

/** Says on `network` which encodings `self` reads (written once: the entry stays while the node is on it). */
export function sayCodecs(core: GossipPort['core'], network: string, self: string, now: number): void {
  const mine = core.tableEntries(network, ENDPOINT_CODEC_TABLE).find((e) => e.key === self && e.owner === self);
  if (mine && dec.decode(mine.value) === ENDPOINT_CODECS) return;
  core.tableSet(network, ENDPOINT_CODEC_TABLE, self, enc.encode(ENDPOINT_CODECS), now);
}

/**
 * The network whose gate `ev` may change, or undefined: a node joining or leaving it (its node list), or a
 * word in its ENDPOINT_CODEC_TABLE (a node dying leaves each of its networks with a `network-leave`).
 */
function gateEventNetwork(ev: GossipEvent): string | undefined {
  if (ev.type === 'network-join' || ev.type === 'network-leave') return ev.network;
  if ((ev.type === 'create' || ev.type === 'update' || ev.type === 'delete') && ev.table === ENDPOINT_CODEC_TABLE) return ev.network;
  return undefined;
}

export interface CodecRegateOptions {
  self: string;
  gossip: GossipPort;
  /** Only events on networks this says yes to count (the LB's `ingress` alone); every network when absent. */
  watches?: (network: string) => boolean;
  /** False while the writer holds no record: events are then ignored (a record written later takes the gate as it is then). */
  holds: () => boolean;
  /**
   * Rewrites the writer's records on `network` that are not in `encoding` (tableSet, no pump: CodecRegate pumps once
   * after all networks) and returns whether it wrote one. Called only while this node is on `network`.
   */
  rewrite: (network: string, encoding: EndpointEncoding) => boolean;
}

/**
 * Rewrites a writer's records when a network's gate may have changed. Events are coalesced per network
 * until a microtask after the event's dispatch (writing from inside a gossip listener would re-enter the
 * pump): each network named by one or more events is then re-gated once, its allowed encoding read once,
 * and the gossip is pumped once when anything was rewritten. A network no event named is not looked at (its
 * gate cannot have changed: every input of allowedEncoding changes with an event on that network).
 */
export class CodecRegate {
  private readonly dirty = new Set<string>();

  constructor(private readonly o: CodecRegateOptions) {}

  /** The writer's gossip listener calls this with every event. */
  onGossip(ev: GossipEvent): void {
    const network = gateEventNetwork(ev);
    if (network === undefined || (this.o.watches && !this.o.watches(network)) || !this.o.holds()) return;
    const first = this.dirty.size === 0;
    this.dirty.add(network);
    if (first) queueMicrotask(() => this.flush());
  }

  private flush(): void {
    const networks = [...this.dirty];
    this.dirty.clear();
    const joined = new Set(this.o.gossip.core.networks());
    let wrote = false;
    for (const network of networks) {
      if (!joined.has(network)) continue;
      if (this.o.rewrite(network, allowedEncoding(this.o.gossip.core, network, this.o.self))) wrote = true;
    }
    if (wrote) this.o.gossip.pump();
  }
}
