/**
 * How a local task appears on the mesh, for the worker: joining each attachment's gossip
 * network, its overlay endpoint (the sandbox appears with the first one), its endpoint records
 * (`starting`/`running`/`draining`), and the reverse when it goes — leaving a network when no
 * task of this node uses it any more (the rule: core/worker/converge.ts leavesNetwork).
 *
 * Record encoding (issue 18 §1): on each network it joins, the node says in ENDPOINT_CODEC_TABLE that it reads
 * compact records; it writes its records compact on a network only while every node there has said so
 * (core/endpoints.ts compactAllowed), else JSON, which agents before the compact encoding read. When that
 * changes (a node joins or leaves the network, a word arrives) the records already written are rewritten in
 * the encoding now allowed: an older agent joining gets JSON records, an upgrade completing gets compact ones.
 */
import type { Assignment } from '../../core/assignments.js';
import type { Clock } from '../../core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointEncoding, type EndpointRecord } from '../../core/endpoints.js';
import { leavesNetwork, type HeldTask } from '../../core/worker/converge.js';
import { allowedEncoding, CodecRegate, sayCodecs } from '../gossip/codecs.js';
import type { GossipPort, OverlaySubsystem } from '../overlay/overlay.js';
import { endpointRecord, overlayNetworkOf } from './plan.js';

/** The overlay's key of a task's endpoint on one network. */
export function localKey(taskId: string, networkId: string): string {
  return `${taskId} ${networkId}`;
}

export interface TaskMeshOptions {
  nodeName: string;
  nodeIp: string;
  clock: Clock;
  gossip: GossipPort;
  overlay: OverlaySubsystem;
}

/** A record this node has written, with the encoding it was written in (to rewrite it when the rule changes). */
interface Written { network: string; taskId: string; record: EndpointRecord; encoding: EndpointEncoding }

export class TaskMesh {
  /** By localKey(task, network). */
  private readonly written = new Map<string, Written>();
  /** Rewrites them when a network's gate changes. */
  private readonly regate: CodecRegate;

  constructor(private readonly o: TaskMeshOptions) {
    this.regate = new CodecRegate({
      self: o.nodeName, gossip: o.gossip, holds: () => this.written.size > 0, rewrite: (network, e) => this.rewrite(network, e),
    });
    o.gossip.onEvent((ev) => this.regate.onGossip(ev));
  }

  /** Joins the task's networks and adds its local endpoints (one per attachment). */
  attach(a: Assignment): void {
    for (const att of a.attachments) {
      this.o.gossip.core.joinNetwork(att.network.id, this.o.clock.now());
      this.sayCodecs(att.network.id);
      // macvlan: the gossip network carries its records (DNS), but there is no overlay sandbox.
      if (att.network.driver === 'macvlan') continue;
      this.o.overlay.defineNetwork(overlayNetworkOf(att));
      // One local endpoint per attachment: keyed by task AND network (a task on `front` and
      // `back` needs both sandboxes; keyed by task alone the second replaced the first).
      this.o.overlay.addLocal(localKey(a.task.id, att.network.id), { network: att.network.id, ip: att.ip, mac: att.mac });
    }
    this.o.gossip.pump();
  }

  /** Publishes the task's records in `state` on each of its networks. `exposed`: the image's declared ports. */
  publish(a: Assignment, state: EndpointRecord['state'], exposed: ReadonlyArray<{ proto: 'tcp' | 'udp'; port: number }> = []): void {
    const now = this.o.clock.now();
    const allowed = new Map<string, EndpointEncoding>();
    for (const att of a.attachments) {
      const net = att.network.id;
      if (!allowed.has(net)) allowed.set(net, this.encodingOn(net));
      const w: Written = { network: net, taskId: a.task.id, record: endpointRecord(a, att, this.o.nodeName, this.o.nodeIp, state, exposed), encoding: allowed.get(net)! };
      this.o.gossip.core.tableSet(net, ENDPOINT_TABLE, a.task.id, encodeEndpoint(w.record, w.encoding), now);
      this.written.set(localKey(a.task.id, net), w);
    }
    this.o.gossip.pump();
  }

  /** Deletes the task's records and local endpoints; leaves networks no other task of `held` uses. */
  detach(a: Assignment, held: Iterable<HeldTask>): void {
    const now = this.o.clock.now();
    // Idempotent: a task that failed was detached when it exited, and is detached again when the
    // manager then removes it; by then the node may have left the network (tableDelete would throw
    // "not on network", failing the converge that must start the replacement).
    const joined = new Set(this.o.gossip.core.networks());
    const others = [...held];
    for (const att of a.attachments) {
      const overlay = att.network.driver !== 'macvlan';
      if (overlay) this.o.overlay.removeLocal(localKey(a.task.id, att.network.id));
      this.written.delete(localKey(a.task.id, att.network.id));
      if (!joined.has(att.network.id)) continue;
      this.o.gossip.core.tableDelete(att.network.id, ENDPOINT_TABLE, a.task.id, now);
      if (leavesNetwork(att.network.id, a.task.id, others)) {
        this.o.gossip.core.leaveNetwork(att.network.id, now);
        if (overlay) this.o.overlay.forgetNetwork(att.network.id);
      }
    }
    this.o.gossip.pump();
  }

  /** The encoding this node may write records in on `network` now. */
  encodingOn(network: string): EndpointEncoding {
    return allowedEncoding(this.o.gossip.core, network, this.o.nodeName);
  }

  /** Says on `network` which encodings this node reads (once: the entry stays while the node is on it). */
  private sayCodecs(network: string): void {
    sayCodecs(this.o.gossip.core, network, this.o.nodeName, this.o.clock.now());
  }

  /** Rewrites this node's records on `network` not in `e`, the encoding now allowed there; true when it wrote one. */
  private rewrite(network: string, e: EndpointEncoding): boolean {
    let wrote = false;
    for (const w of this.written.values()) {
      if (w.network !== network || w.encoding === e) continue;
      w.encoding = e;
      this.o.gossip.core.tableSet(w.network, ENDPOINT_TABLE, w.taskId, encodeEndpoint(w.record, e), this.o.clock.now());
      wrote = true;
    }
    return wrote;
  }
}
