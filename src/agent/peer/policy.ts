/**
 * The pure rules of the peer API (no I/O): which routes of a node's control API another node may
 * ask for, which certificate role each needs, who a peer certificate says it is, and how a node
 * reference (name or underlay address) resolves through gossip membership. The shells
 * (server.ts, client.ts, peer.ts) only apply them.
 *
 * Why an allowlist and not "everything read-only": the control API also carries writes
 * (assignments, ingress, gossip keys, cluster init/leave) that must never be reachable from the
 * network, and new routes must be opted in here consciously, not exposed by default.
 */
import { MeshError } from '../../core/errors.js';
import { nodeNameSchema } from '../../core/config.js';
import { hostOfAddr } from '../../core/hostport.js';
import { isIp6 } from '../../core/ipam/addr6.js';
import { isJoinRole, type JoinRole } from '../../core/tokens/tokens.js';

/** Who may call a peer route: any node of the cluster (`node`), or manager nodes only. */
export type PeerAccess = 'node' | 'manager';

export interface PeerRoute {
  method: 'GET' | 'POST';
  /** Path pattern in the control API's Router syntax (`:name` = one segment). */
  pattern: string;
  access: PeerAccess;
}

/**
 * The routes served over the peer API. Debug views are read-only and carry what gossip already
 * spreads to every node (members, tables, endpoints), so any node may read them. `exec` and task
 * logs reach into another node's workloads: a worker's root must not get them (swarm's rule that
 * only managers drive the cluster), so they need a manager certificate.
 */
export const PEER_ROUTES: readonly PeerRoute[] = Object.freeze([
  { method: 'GET', pattern: '/v1/info', access: 'node' },
  { method: 'GET', pattern: '/v1/health', access: 'node' },
  { method: 'GET', pattern: '/v1/tasks', access: 'node' },
  { method: 'GET', pattern: '/v1/tasks/:task', access: 'node' },
  { method: 'GET', pattern: '/v1/lb/status', access: 'node' },
  // Policies between services (issue #19): what each task's filter allows (debug trace's "denied by policy").
  { method: 'GET', pattern: '/v1/policy/status', access: 'node' },
  { method: 'GET', pattern: '/v1/dns/debug', access: 'node' },
  { method: 'GET', pattern: '/v1/dns/stats', access: 'node' },
  { method: 'GET', pattern: '/v1/overlay/status', access: 'node' },
  { method: 'GET', pattern: '/v1/overlay/mtu', access: 'node' },
  // Sends a few pings to members' underlay addresses, nothing else: a manager may ask it after an underlay change.
  { method: 'POST', pattern: '/v1/overlay/mtu/probe', access: 'manager' },
  { method: 'GET', pattern: '/v1/gossip/members', access: 'node' },
  { method: 'GET', pattern: '/v1/gossip/metrics', access: 'node' },
  { method: 'GET', pattern: '/v1/gossip/tables', access: 'node' },
  // Convergence receipts: read from the acks gossip spreads to every member (src/agent/drain/convergence.ts).
  { method: 'GET', pattern: '/v1/convergence', access: 'node' },
  { method: 'GET', pattern: '/v1/tasks/:task/logs', access: 'manager' },
  { method: 'POST', pattern: '/v1/tasks/:task/exec', access: 'manager' },
] as const);

/** The access a request needs, or null when the route is not served to peers at all. */
export function peerRouteAccess(method: string, pathname: string): PeerAccess | null {
  const segs = pathname.split('/').filter(Boolean);
  if (segs.some((s) => s === '.' || s === '..')) return null;
  for (const r of PEER_ROUTES) {
    if (r.method !== method) continue;
    const parts = r.pattern.split('/').filter(Boolean);
    if (parts.length !== segs.length) continue;
    if (parts.every((p, i) => (p.startsWith(':') ? segs[i]!.length > 0 : p === segs[i]))) return r.access;
  }
  return null;
}

export function peerAllows(access: PeerAccess, role: JoinRole): boolean {
  return access === 'node' || role === 'manager';
}

/** The access check of one request: returns the route's access, or throws the refusal the caller sees. */
export function checkPeerRequest(method: string, pathname: string, caller: { nodeId: string; role: JoinRole }): PeerAccess {
  const access = peerRouteAccess(method, pathname);
  if (access === null) throw new MeshError('MESHD_FORBIDDEN', `${method} ${pathname} is not served over the peer API (debug views, and exec/logs for managers, only)`, { nodeId: caller.nodeId, role: caller.role });
  if (!peerAllows(access, caller.role)) {
    throw new MeshError('MESHD_FORBIDDEN', `${method} ${pathname} on another node is for managers; node ${caller.nodeId} is a ${caller.role}`, { nodeId: caller.nodeId, role: caller.role, need: access });
  }
  return access;
}

type DnField = string | string[] | undefined;
const first = (v: DnField): string | undefined => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v);

/**
 * Who a (chain-verified) peer certificate says it is: CN=<node id>, OU=<role>, as the cluster CA
 * writes them (src/adapters/pki/ca.ts). Several CNs or OUs, or an unknown role, are refused:
 * the CA never issues those, so such a certificate is not a node's.
 */
export function peerIdentityFromSubject(subject: { CN?: DnField; OU?: DnField } | undefined): { nodeId: string; role: JoinRole } {
  const nodeId = first(subject?.CN);
  const role = first(subject?.OU);
  if (!nodeId || !/^[a-z0-9]{1,64}$/.test(nodeId) || !isJoinRole(role)) {
    throw new MeshError('MESHD_CERT_REJECTED', 'peer certificate is not a node certificate of this cluster (CN=<node id>, OU=worker|manager)', { reason: 'not-a-node' });
  }
  return { nodeId, role };
}

export interface PeerMember {
  name: string;
  /** Gossip address, `IP:PORT`. */
  addr: string;
  state: string;
}

export interface ResolvedPeer {
  name: string;
  /** Underlay address (the gossip address's host). */
  ip: string;
  self: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const hostOf = hostOfAddr;

/**
 * A node reference — its name or its underlay address — to the member it names, through this
 * node's gossip membership (the one view of "who is in the cluster" every agent has). Dead or
 * left members are refused as unreachable at once: asking them would only wait for a timeout.
 */
export function resolvePeer(ref: string, self: { name: string; addr: string }, members: readonly PeerMember[]): ResolvedPeer {
  const isIp = IPV4.test(ref) || isIp6(ref);
  if (!isIp && !nodeNameSchema.safeParse(ref).success) throw new MeshError('MESHD_BAD_ARGUMENT', `not a node name or IP address: ${JSON.stringify(ref.slice(0, 64))}`);
  if (ref === self.name || ref === self.addr) return { name: self.name, ip: self.addr, self: true };
  const m = members.find((x) => x.name === ref) ?? (isIp ? members.find((x) => hostOf(x.addr) === ref) : undefined);
  if (!m) throw new MeshError('MESHD_NODE_NOT_FOUND', `no node ${ref} in ${self.name}'s gossip membership (see: netctl debug members)`, { node: ref });
  if (m.name === self.name) return { name: self.name, ip: self.addr, self: true };
  if (m.state === 'dead' || m.state === 'left') {
    throw new MeshError('MESHD_PEER_UNREACHABLE', `node ${m.name} is ${m.state} in ${self.name}'s gossip membership`, { node: m.name, reason: `gossip: ${m.state}` });
  }
  return { name: m.name, ip: hostOf(m.addr), self: false };
}

/** `/v1/<segments>?<query>` of a forwarded request, each segment re-encoded (it was decoded by the Router). */
export function peerPath(segments: readonly string[], query: string): string {
  return `/v1/${segments.map(encodeURIComponent).join('/')}${query ? `?${query}` : ''}`;
}
