/**
 * Which agent a command talks to: -H unix://PATH, or --lab L --node N, or $MESHD_HOST, or the default socket.
 *
 * Other nodes: in a lab (`--lab`, or `--node` with neither -H nor $MESHD_HOST) every node's agent has its
 * own socket here. Anywhere else (a real cluster) netctl talks to ONE agent and reaches the others through
 * it: `/v1/peers/NODE/...` on that agent, which asks NODE's agent over mTLS (src/agent/peer). There
 * `--node N` on a per-node command (debug lb/dns/fdb/..., task ls, exec) names the node to ask.
 */
import { ApiClient, parseHost } from '../adapters/api/client.js';
import { nodeSocket, validateLabName } from '../lab/plan.js';

export const DEFAULT_SOCKET = '/run/meshd/meshd.sock';
export const DEFAULT_LAB = 'demo';

export interface GlobalOpts {
  host?: string;
  lab?: string;
  node?: string;
  format?: string;
}

/** True when nodes are reached through the lab's per-node sockets; false: through the one local agent's peers. */
export function labMode(g: GlobalOpts): boolean {
  return !g.host && (g.lab !== undefined || (g.node !== undefined && !process.env.MESHD_HOST));
}

export function socketFor(g: GlobalOpts): string {
  if (g.host) return parseHost(g.host);
  if (labMode(g)) return nodeSocket(validateLabName(g.lab ?? DEFAULT_LAB), g.node ?? 'n1');
  if (process.env.MESHD_HOST) return parseHost(process.env.MESHD_HOST);
  return DEFAULT_SOCKET;
}

export function clientFor(g: GlobalOpts, timeoutMs?: number): ApiClient {
  return new ApiClient({ socketPath: socketFor(g), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
}

/** The agent of `node` asked through the local agent's peer API (same paths as a local client). */
export function peerClient(g: GlobalOpts, node: string): ApiClient {
  return new ApiClient({ socketPath: socketFor(g), pathPrefix: `/v1/peers/${encodeURIComponent(node)}` });
}

/** The agent of node `node`: its lab socket in lab mode, else through the local agent. */
export function agentOf(g: GlobalOpts, node: string): ApiClient {
  if (labMode(g)) return new ApiClient({ socketPath: nodeSocket(validateLabName(g.lab ?? DEFAULT_LAB), node) });
  return peerClient(g, node);
}

/** For per-node views: the node --node names (lab socket, or a peer of the local agent), else the local agent. */
export function nodeClientFor(g: GlobalOpts): ApiClient {
  if (labMode(g) || g.node === undefined) return clientFor(g);
  return peerClient(g, g.node);
}
