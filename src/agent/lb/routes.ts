/**
 * The LB subsystem's HTTP routes: `GET /v1/lb/status` (what each namespace wants next to what its
 * kernel holds) and the routing-mesh configuration `/v1/ingress` (the node's ingress address and
 * per-task attachments; persisted and plumbed by ingress-side.ts).
 */
import type { Router } from '../../adapters/api/server.js';
import type { IngressAddr } from './ingress.js';
import { parseIngressAddr } from './plan.js';
import type { Persisted } from './types.js';

export interface LbStatusSource {
  /** The status document; throws MESHD_NOT_FOUND for a service this node does not know. */
  status(service?: string): Promise<object>;
}

export interface IngressConfigPort {
  config(): Persisted;
  /** Sets this node's ingress address (routing mesh on). */
  setNode(addr: IngressAddr): void;
  /** Requests an ingress attachment for a task; throws MESHD_BAD_ARGUMENT for an address in use. */
  attachTask(taskId: string, addr: IngressAddr): void;
}

export function registerLbRoutes(router: Router, lb: LbStatusSource, ingress: IngressConfigPort): void {
  router.add('GET', '/v1/lb/status', async (r) => ({ json: await lb.status(r.query.get('service') ?? undefined) }));
  router.add('GET', '/v1/ingress', () => {
    const c = ingress.config();
    return { json: { node: c.node, tasks: c.tasks } };
  });
  router.add('PUT', '/v1/ingress', (r) => {
    const addr = parseIngressAddr(r.body);
    ingress.setNode(addr);
    return { json: { ok: true, ...addr } };
  });
  router.add('PUT', '/v1/ingress/tasks/:task', (r) => {
    const addr = parseIngressAddr(r.body);
    const id = r.params.task!;
    ingress.attachTask(id, addr);
    return { json: { ok: true, task: id, ...addr } };
  });
}
