/**
 * Network attachments of standalone containers (`netctl run --network app`, swarm's network
 * attachment tasks): the manager records which node holds which addresses for which container,
 * allocated from the same IPAM as tasks and VIPs, and frees them when the node says the
 * container is removed. They live under `attachments/` in the store, apart from `tasks/`, so
 * the orchestrator never sees them: it cannot mistake one for a stray task of a service, nor
 * restart or reschedule it (a standalone container belongs to its node, as in docker).
 *
 * Records: model.ts (AttachmentRecord, CKEYS.attachments). Routes: a node creates and deletes attachments for itself only (`node` access: the node is
 * the one in its certificate, never a parameter); managers list them (`netctl container ls
 * --all`). A node that is removed (`node rm`) loses its attachments with it (see
 * dropRemovedNodesAttachments); a node that is merely down keeps them — its containers may still run.
 */
import { MeshError } from '../../core/errors.js';
import { attachRequestSchema, checkAttachable, type AttachmentGrant } from '../../core/standalone/run.js';
import { parseBody } from '../model.js';
import { attachmentOwner, type AttachmentRecord } from './model.js';
import type { ControlHost } from './host.js';
import { newId, type ControlState } from './state.js';

/** Creates an attachment for `nodeId`: checks the networks and the name, allocates all addresses or none. */
export function createAttachment(st: ControlState, nodeId: string, body: unknown, now: number, id = newId()): AttachmentGrant {
  const req = parseBody(attachRequestSchema, 'attachment', body);
  const nets = checkAttachable(req.networks, (name) => st.networkByName(name));
  if ([...st.services.values()].some((s) => s.spec.name === req.name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `Conflict. The container name "${req.name}" is already in use by a service`, { field: 'name' });
  }
  if ([...st.attachments.values()].some((a) => a.name === req.name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `Conflict. The container name "${req.name}" is already in use by a container`, { field: 'name' });
  }
  const addresses: Record<string, string> = {};
  try {
    for (const n of nets) addresses[n.id] = st.ipam.allocateAddress(n.name, attachmentOwner(id));
  } catch (e) {
    for (const [netId, ip] of Object.entries(addresses)) st.ipam.releaseAddress(st.networks.get(netId)!.name, ip);
    throw e;
  }
  st.putAttachment({ id, name: req.name, nodeId, addresses, createdAt: now });
  return grantOf(st, id);
}

/** The grant of an existing attachment (network definitions as they are now). */
export function grantOf(st: ControlState, id: string): AttachmentGrant {
  const a = st.attachments.get(id);
  if (!a) throw new MeshError('MESHD_NOT_FOUND', `no such attachment: ${id}`);
  return {
    id: a.id, name: a.name,
    networks: Object.entries(a.addresses).flatMap(([netId, ip]) => {
      const n = st.networks.get(netId);
      return n ? [{ network: { id: n.id, name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, ...(n.mtu !== undefined ? { mtu: n.mtu } : {}) }, ip }] : [];
    }),
  };
}

/** Frees a node's attachment; another node's is refused (a node only ever frees its own). */
export function deleteAttachment(st: ControlState, nodeId: string, id: string): { removed: string; name: string } {
  const a = st.attachments.get(id);
  if (!a) throw new MeshError('MESHD_NOT_FOUND', `no such attachment: ${id}`);
  if (a.nodeId !== nodeId) throw new MeshError('MESHD_FORBIDDEN', `attachment ${id} belongs to another node`);
  st.deleteAttachment(id);
  return { removed: id, name: a.name };
}

/** A removed node's attachments go with it (its containers are gone from the cluster); run by every reconcile step. */
export function dropRemovedNodesAttachments(st: ControlState): number {
  let n = 0;
  for (const a of [...st.attachments.values()]) {
    if (st.nodes.has(a.nodeId)) continue;
    st.deleteAttachment(a.id);
    n++;
  }
  return n;
}

/** What `GET /v1/attachments` shows: names instead of ids. */
export function attachmentView(st: ControlState, a: AttachmentRecord): Record<string, unknown> {
  const addresses: Record<string, string> = {};
  for (const [id, ip] of Object.entries(a.addresses)) addresses[st.netName(id)] = ip;
  return { id: a.id, name: a.name, nodeId: a.nodeId, node: st.nodeName(a.nodeId) ?? a.nodeId, addresses, createdAt: new Date(a.createdAt).toISOString() };
}

export function registerAttachmentRoutes(cp: ControlHost): void {
  const m = cp.o.manager;
  m.route('POST', '/v1/dispatcher/attachments', 'node', async (req, ctx) => ({
    status: 201, json: await cp.serialize((st) => createAttachment(st, ctx.peer!.nodeId, req.body, cp.now())),
  }));
  m.route('GET', '/v1/dispatcher/attachments', 'node', async (_req, ctx) => ({
    json: await cp.serialize((st) => [...st.attachments.values()].filter((a) => a.nodeId === ctx.peer!.nodeId).map((a) => grantOf(st, a.id))),
  }));
  m.route('DELETE', '/v1/dispatcher/attachments/:id', 'node', async (req, ctx) => ({
    json: await cp.serialize((st) => deleteAttachment(st, ctx.peer!.nodeId, req.params.id!)),
  }));
  m.route('GET', '/v1/attachments', 'manager', async () => ({
    json: await cp.serialize((st) => [...st.attachments.values()].sort((a, b) => a.name.localeCompare(b.name)).map((a) => attachmentView(st, a))),
  }));
}
