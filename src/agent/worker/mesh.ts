/**
 * How a local task appears on the mesh, for the worker: joining each attachment's gossip
 * network, its overlay endpoint (the sandbox appears with the first one), its endpoint records
 * (`starting`/`running`/`draining`), and the reverse when it goes — leaving a network when no
 * task of this node uses it any more (the rule: core/worker/converge.ts leavesNetwork).
 */
import type { Assignment } from '../../core/assignments.js';
import type { Clock } from '../../core/clock.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { leavesNetwork, type HeldTask } from '../../core/worker/converge.js';
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

export class TaskMesh {
  constructor(private readonly o: TaskMeshOptions) {}

  /** Joins the task's networks and adds its local endpoints (one per attachment). */
  attach(a: Assignment): void {
    for (const att of a.attachments) {
      this.o.gossip.core.joinNetwork(att.network.id, this.o.clock.now());
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
    for (const att of a.attachments) {
      this.o.gossip.core.tableSet(att.network.id, ENDPOINT_TABLE, a.task.id, encodeEndpoint(endpointRecord(a, att, this.o.nodeName, this.o.nodeIp, state, exposed)), now);
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
      if (!joined.has(att.network.id)) continue;
      this.o.gossip.core.tableDelete(att.network.id, ENDPOINT_TABLE, a.task.id, now);
      if (leavesNetwork(att.network.id, a.task.id, others)) {
        this.o.gossip.core.leaveNetwork(att.network.id, now);
        if (overlay) this.o.overlay.forgetNetwork(att.network.id);
      }
    }
    this.o.gossip.pump();
  }
}
