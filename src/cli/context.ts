/** Which agent a command talks to: -H unix://PATH, or --lab L --node N, or $MESHD_HOST, or the default socket. */
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

export function socketFor(g: GlobalOpts): string {
  if (g.host) return parseHost(g.host);
  if (g.lab || g.node) return nodeSocket(validateLabName(g.lab ?? DEFAULT_LAB), g.node ?? 'n1');
  if (process.env.MESHD_HOST) return parseHost(process.env.MESHD_HOST);
  return DEFAULT_SOCKET;
}

export function clientFor(g: GlobalOpts): ApiClient {
  return new ApiClient({ socketPath: socketFor(g) });
}
