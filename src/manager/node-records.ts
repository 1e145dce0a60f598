/**
 * The cluster's node records as the managers keep them (KEYS.node(id) in the store): list, find by
 * id or unique hostname, and the updates `node update|promote|demote` make (compare-and-put at the
 * version the caller saw, through the leader's fenced transaction). Joining, removal and
 * certificate renewal stay with the Manager: they also touch the CA, the revocation list and the
 * gossip keyring.
 */
import type { Store, TxnOp } from '../adapters/store/store.js';
import { MeshError } from '../core/errors.js';
import type { JoinRole } from '../core/tokens/tokens.js';
import { applyNodeUpdate, checkRoleChange, KEYS, nodeUpdateSchema, nodeView, parseBody, type ManagedNode } from './model.js';

/** What the records need of their manager. */
export interface NodeRecordsHost {
  readonly store: Store;
  leaderTxn(ops: TxnOp[]): Promise<number>;
  leader(): Promise<{ nodeId: string } | undefined>;
}

export class NodeRecords {
  /** `sharedStore`: the managers share a store (etcd), so a second manager is possible (demote checks it). */
  constructor(private readonly m: NodeRecordsHost, private readonly now: () => Date, private readonly sharedStore: boolean) {}

  /** Every node as `node ls` shows it (the leader marked). */
  async list(): Promise<Record<string, unknown>[]> {
    const leaderId = await this.leaderId();
    return (await this.m.store.list<ManagedNode>(KEYS.nodes)).map((kv) => nodeView(kv.value, kv.revision, leaderId));
  }

  /** Finds a node by id, or by hostname when that is unique. */
  async find(ref: string): Promise<{ node: ManagedNode; revision: number }> {
    const byId = await this.m.store.get<ManagedNode>(KEYS.node(ref)).catch((e: unknown) => {
      if (e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT') return undefined; // not a valid id: try the name
      throw e;
    });
    if (byId) return { node: byId.value, revision: byId.revision };
    const byName = (await this.m.store.list<ManagedNode>(KEYS.nodes)).filter((kv) => kv.value.hostname === ref);
    if (byName.length === 1) return { node: byName[0]!.value, revision: byName[0]!.revision };
    if (byName.length > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `node name ${ref} is ambiguous (${byName.length} nodes): use the node id`);
    throw new MeshError('MESHD_NODE_NOT_FOUND', `no node ${ref}`);
  }

  /** `node update` (availability, labels, role): refused when the caller's version is stale. */
  async update(ref: string, body: unknown): Promise<Record<string, unknown>> {
    const u = parseBody(nodeUpdateSchema, 'node update', body);
    const { node, revision } = await this.find(ref);
    if (u.version !== undefined && u.version !== revision) {
      throw new MeshError('MESHD_STORE_CONFLICT', `node ${node.id} is at version ${revision}, not ${u.version}`, { key: KEYS.node(node.id), expected: u.version, actual: revision });
    }
    if (u.role !== undefined && u.role !== node.role) await this.checkRoleChange(node, u.role);
    const next = applyNodeUpdate(node, u, this.now().getTime());
    const rev = await this.m.leaderTxn([{ op: 'put', key: KEYS.node(node.id), value: next, ifRevision: revision }]);
    return nodeView(next, rev, await this.leaderId());
  }

  /** `node promote` / `node demote`: refused per checkRoleChange (model.ts); the node takes the role on its next round (renewCert). */
  private async checkRoleChange(node: ManagedNode, role: JoinRole): Promise<void> {
    const managers = role === 'worker' ? (await this.m.store.list<ManagedNode>(KEYS.nodes)).filter((kv) => kv.value.role === 'manager').length : 0;
    checkRoleChange(node, role, managers, this.sharedStore);
  }

  private async leaderId(): Promise<string | undefined> {
    return (await this.m.leader().catch(() => undefined))?.nodeId;
  }
}
