/**
 * Hands the routing-mesh addresses the manager allocated for this node (its ingress sandbox,
 * each task's ingress interface) to the local LB over the agent's own socket. Called once per
 * dispatcher round by the manager link; a round whose answer equals the last one sends nothing,
 * and only the entries that changed are PUT (a node with 50 tasks does not re-send 50 entries).
 */
import { ApiClient } from '../../adapters/api/client.js';

/** The dispatcher's answer (`GET /v1/dispatcher/ingress`). */
export interface IngressAddresses {
  node: { ip: string; mac: string } | null;
  tasks: Record<string, { ip: string; mac: string }>;
}

export class IngressSync {
  private last = '';

  /** `controlSocket`: the agent's socket (unset: nothing to hand over, e.g. in unit tests). */
  constructor(private readonly controlSocket: string | undefined) {}

  /** Sends what changed since the last call; `fetch` asks the manager. */
  async sync(fetch: () => Promise<IngressAddresses>): Promise<void> {
    if (!this.controlSocket) return;
    const cfg = await fetch();
    const text = JSON.stringify(cfg);
    if (text === this.last) return;
    const prev: IngressAddresses = this.last ? JSON.parse(this.last) as IngressAddresses : { node: null, tasks: {} };
    const agent = new ApiClient({ socketPath: this.controlSocket, timeoutMs: 10_000 });
    if (cfg.node && JSON.stringify(cfg.node) !== JSON.stringify(prev.node)) await agent.call('PUT', '/v1/ingress', cfg.node);
    for (const [id, a] of Object.entries(cfg.tasks)) {
      if (JSON.stringify(prev.tasks[id]) !== JSON.stringify(a)) await agent.call('PUT', `/v1/ingress/tasks/${encodeURIComponent(id)}`, a);
    }
    this.last = text;
  }

  /** Forgets what was sent (the node left the cluster: a new cluster starts from nothing). */
  reset(): void {
    this.last = '';
  }
}
