/**
 * The manager's own routes: CA, join, whoami, certificate renewal, nodes, managers and join
 * tokens (services, networks and tasks are the control plane's, src/manager/control). Access
 * levels are ManagerApi's: public, any node, managers only.
 */
import { MeshError } from '../core/errors.js';
import { isJoinRole, type JoinRole } from '../core/tokens/tokens.js';
import type { PeerIdentity } from '../adapters/pki/ca.js';
import { nodeView, type ManagedNode } from './model.js';
import type { Access, ManagerHandler } from './server.js';

/** What these routes use of the Manager (manager.ts implements it; no import back, so no cycle). */
export interface CoreRoutesHost {
  readonly ca: { readonly certPem: string };
  route(method: string, pattern: string, access: Access, handler: ManagerHandler): unknown;
  join(body: unknown, remoteAddress: string | undefined): Promise<unknown>;
  renewCert(peer: PeerIdentity, body: unknown): Promise<unknown>;
  listManagers(): Promise<unknown>;
  leader(): Promise<{ nodeId: string } | undefined>;
  readonly nodes: { list(): Promise<unknown>; find(ref: string): Promise<{ node: ManagedNode; revision: number }>; update(ref: string, body: unknown): Promise<unknown> };
  removeNode(ref: string, force: boolean): Promise<unknown>;
  listRevocations(): Promise<unknown>;
  readonly keyring: { current(): Promise<string[] | undefined>; rotate(): Promise<unknown> };
  joinToken(role: JoinRole): Promise<string>;
  rotateJoinToken(role: JoinRole): Promise<string>;
}

export function addCoreRoutes(m: CoreRoutesHost): void {
  const roleParam = (v: string | undefined): JoinRole => {
    if (!isJoinRole(v)) throw new MeshError('MESHD_BAD_ARGUMENT', `role must be worker or manager, got ${JSON.stringify(v)}`);
    return v;
  };
  const flag = (q: URLSearchParams, name: string): boolean => {
    const v = q.get(name);
    if (v === null || v === '0' || v === 'false') return false;
    if (v === '1' || v === 'true' || v === '') return true;
    throw new MeshError('MESHD_BAD_ARGUMENT', `${name} must be 1 or 0`);
  };
  m.route('GET', '/v1/ca', 'public', () => ({ text: m.ca.certPem, contentType: 'application/x-pem-file' }));
  m.route('POST', '/v1/join', 'public', async (req, ctx) => ({ status: 201, json: await m.join(req.body, ctx.remoteAddress) }));
  m.route('GET', '/v1/whoami', 'node', (_req, ctx) => ({ json: { nodeId: ctx.peer!.nodeId, role: ctx.peer!.role, notAfter: ctx.peer!.notAfter.toISOString() } }));
  m.route('POST', '/v1/certs/renew', 'node', async (req, ctx) => ({ json: await m.renewCert(ctx.peer!, req.body) }));
  m.route('GET', '/v1/nodes', 'manager', async () => ({ json: await m.nodes.list() }));
  // Every node may learn the managers' addresses (agents fail over between them).
  m.route('GET', '/v1/managers', 'node', async () => ({ json: await m.listManagers() }));
  // Every node fetches the revocation list, so its peer API refuses removed nodes' certificates
  // (src/agent/peer/revocations.ts); it names only node ids and serials, nothing secret.
  m.route('GET', '/v1/revocations', 'node', async () => ({ json: await m.listRevocations() }));
  // Every node pulls the cluster's gossip keyring (mTLS, node certificate): a node of the cluster
  // gossips only with it (src/agent/link/gossip-keys.ts). Secret: never logged.
  m.route('GET', '/v1/gossip-keys', 'node', async () => ({ json: { keys: (await m.keyring.current()) ?? [] } }));
  m.route('POST', '/v1/cluster/gossip-keys/rotate', 'manager', async () => ({ json: await m.keyring.rotate() }));
  m.route('GET', '/v1/nodes/:id', 'manager', async (req) => {
    const { node, revision } = await m.nodes.find(req.params.id!);
    return { json: nodeView(node, revision, (await m.leader().catch(() => undefined))?.nodeId) };
  });
  m.route('POST', '/v1/nodes/:id', 'manager', async (req) => ({ json: await m.nodes.update(req.params.id!, req.body) }));
  m.route('DELETE', '/v1/nodes/:id', 'manager', async (req) => ({ json: await m.removeNode(req.params.id!, flag(req.query, 'force')) }));
  m.route('GET', '/v1/cluster/join-token/:role', 'manager', async (req) => {
    const role = roleParam(req.params.role);
    if (flag(req.query, 'rotate')) throw new MeshError('MESHD_BAD_ARGUMENT', 'use POST to rotate a join token');
    return { json: { role, token: await m.joinToken(role) } };
  });
  m.route('POST', '/v1/cluster/join-token/:role', 'manager', async (req) => {
    const role = roleParam(req.params.role);
    const rotate = flag(req.query, 'rotate');
    return { json: { role, rotated: rotate, token: rotate ? await m.rotateJoinToken(role) : await m.joinToken(role) } };
  });
}
