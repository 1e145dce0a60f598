/**
 * The cluster routes on the agent socket: status, init, join, join tokens and leave, and the
 * generic proxy `/v1/manager/<path>` → the manager's `/v1/<path>` over mTLS (so netctl only
 * ever talks to its local agent; a worker node gets the manager's 403 for manager-only routes).
 */
import { z } from 'zod';
import type { Router } from '../../adapters/api/server.js';
import { parseBody } from '../../manager/model.js';
import type { ApiResult } from '../../adapters/api/server.js';

/** What the routes use of the manager link (manager-link.ts implements it; no import back, so no cycle). */
export interface LinkRoutesHost {
  status(): Record<string, unknown>;
  init(b: { listenPort?: number | undefined; store?: unknown }): Promise<Record<string, unknown>>;
  join(b: { token: string; addr: string }): Promise<Record<string, unknown>>;
  leave(b: { force: boolean }): Promise<{ left: true; nodeId: string | null }>;
  forward(method: string, path: string, body: unknown): Promise<ApiResult>;
}

const initSchema = z.object({
  listenPort: z.number().int().min(0).max(65535).optional(),
  /** `{ kind: 'etcd', endpoints: [...] }` for a cluster several managers can share; default sqlite. */
  store: z.unknown().optional(),
}).strict();
const joinSchema = z.object({ token: z.string().min(1).max(256), addr: z.string().min(1).max(300) }).strict();
const leaveSchema = z.object({ force: z.boolean().default(false) }).strict();
/** Proxied paths have up to 4 segments after /v1/manager. */
const PROXY_PATTERNS = ['/v1/manager/:a', '/v1/manager/:a/:b', '/v1/manager/:a/:b/:c', '/v1/manager/:a/:b/:c/:d'];

export function registerLinkRoutes(r: Router, link: LinkRoutesHost): void {
  r.add('GET', '/v1/cluster', () => ({ json: link.status() }));
  r.add('POST', '/v1/cluster/init', async (req) => ({ status: 201, json: await link.init(parseBody(initSchema, 'cluster init', req.body ?? {})) }));
  r.add('POST', '/v1/cluster/join', async (req) => ({ status: 201, json: await link.join(parseBody(joinSchema, 'cluster join', req.body)) }));
  r.add('GET', '/v1/cluster/join-token/:role', (req) => {
    const rotate = req.query.get('rotate') === '1';
    return link.forward(rotate ? 'POST' : 'GET', `/v1/cluster/join-token/${encodeURIComponent(req.params.role!)}${rotate ? '?rotate=1' : ''}`, undefined);
  });
  r.add('POST', '/v1/cluster/leave', async (req) => ({ json: await link.leave(parseBody(leaveSchema, 'cluster leave', req.body ?? {})) }));
  for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
    for (const p of PROXY_PATTERNS) {
      r.add(method, p, (req) => {
        const segs = ['a', 'b', 'c', 'd'].map((k) => req.params[k]).filter((s): s is string => s !== undefined);
        const qs = req.query.toString();
        return link.forward(method, `/v1/${segs.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`, req.body);
      });
    }
  }
}
