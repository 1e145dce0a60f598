/**
 * The records this node writes on `ingress` (its ingress sandbox `sbox-<node>` and its tasks' ingress
 * attachments), in the encoding the gate allows (issue 18 §1), like the worker does for task networks
 * (agent/worker/mesh.ts): the node says in ENDPOINT_CODEC_TABLE on `ingress` that it reads compact records,
 * writes compact only while every node on `ingress` has said so (core/endpoints.ts compactAllowed: a node
 * whose word has not arrived counts as one that does not), else JSON, and rewrites what it wrote when that
 * changes (an older agent joining the routing mesh gets JSON again, an upgrade completing gets compact).
 * Readers need nothing: decodeEndpoint takes both, and a record that reads as neither is counted, not applied.
 */
import type { Clock } from '../../core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, INGRESS_NETWORK, type EndpointEncoding, type EndpointRecord } from '../../core/endpoints.js';
import { allowedEncoding, CodecRegate, sayCodecs } from '../gossip/codecs.js';
import type { GossipPort } from '../overlay/overlay.js';

export class IngressRecords {
  /** By task id: what this node wrote on `ingress` and in which encoding. */
  private readonly written = new Map<string, { record: EndpointRecord; encoding: EndpointEncoding }>();

  /** Rewrites them when the gate on `ingress` changes. */
  private readonly regate: CodecRegate;

  constructor(private readonly o: { nodeName: string; clock: Clock; gossip: GossipPort }) {
    this.regate = new CodecRegate({
      self: o.nodeName, gossip: o.gossip, watches: (network) => network === INGRESS_NETWORK,
      holds: () => this.written.size > 0, rewrite: (_network, e) => this.rewrite(e),
    });
    o.gossip.onEvent((ev) => this.regate.onGossip(ev));
  }

  /** After joining `ingress`: says this node reads compact records there (written once; the entry stays). */
  say(): void {
    sayCodecs(this.o.gossip.core, INGRESS_NETWORK, this.o.nodeName, this.o.clock.now());
  }

  /** The encoding records may be written in on `ingress` now. */
  encoding(): EndpointEncoding {
    return allowedEncoding(this.o.gossip.core, INGRESS_NETWORK, this.o.nodeName);
  }

  /** Writes `rec` (key = its task id) in the allowed encoding; the caller pumps. */
  set(rec: EndpointRecord): void {
    const encoding = this.encoding();
    this.o.gossip.core.tableSet(INGRESS_NETWORK, ENDPOINT_TABLE, rec.taskId, encodeEndpoint(rec, encoding), this.o.clock.now());
    this.written.set(rec.taskId, { record: rec, encoding });
  }

  /** True when this process wrote record `taskId` (and tracks its encoding). */
  wrote(taskId: string): boolean {
    return this.written.has(taskId);
  }

  /** Deletes this node's record `taskId`; the caller pumps. */
  delete(taskId: string): void {
    this.written.delete(taskId);
    this.o.gossip.core.tableDelete(INGRESS_NETWORK, ENDPOINT_TABLE, taskId, this.o.clock.now());
  }

  /** Rewrites the records whose allowed encoding changed since they were written; true when it wrote one. */
  private rewrite(e: EndpointEncoding): boolean {
    let wrote = false;
    for (const [taskId, w] of this.written) {
      if (w.encoding === e) continue;
      w.encoding = e;
      this.o.gossip.core.tableSet(INGRESS_NETWORK, ENDPOINT_TABLE, taskId, encodeEndpoint(w.record, e), this.o.clock.now());
      wrote = true;
    }
    return wrote;
  }
}
