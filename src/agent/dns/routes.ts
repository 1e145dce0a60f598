/**
 * The DNS subsystem's routes on the agent socket: `GET /v1/dns/debug?name=&type=&task=` (how a
 * name resolves, and from which entries) and `GET /v1/dns/stats` (server, registry, feed and
 * sandbox counters).
 */
import type { Router } from '../../adapters/api/server.js';
import { MeshError } from '../../core/errors.js';
import { parseQtype } from './plan.js';

/** What the routes use of the DNS subsystem (dns.ts implements it; no import back, so no cycle). */
export interface DnsRoutesHost {
  debug(name: string, qtype: number, task: string | undefined): Promise<Record<string, unknown>>;
  stats(): Promise<Record<string, unknown>>;
}

export function registerDnsRoutes(router: Router, dns: DnsRoutesHost): void {
  router.add('GET', '/v1/dns/debug', async (r) => {
    const name = r.query.get('name');
    if (!name || name.length > 255) throw new MeshError('MESHD_BAD_ARGUMENT', 'name is required (at most 255 characters)');
    const qtype = parseQtype(r.query.get('type') ?? 'A');
    return { json: await dns.debug(name, qtype, r.query.get('task') ?? undefined) };
  });
  router.add('GET', '/v1/dns/stats', async () => ({ json: await dns.stats() }));
}
