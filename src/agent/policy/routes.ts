/**
 * The policy subsystem's HTTP route: `GET /v1/policy/status[?task=ID|NAME]` — per local task,
 * the policy its namespace should hold (rules, allowed source addresses) and whether the last
 * apply matches it. `netctl debug trace` reads it on the backend's node to say "denied by
 * policy of web"; also served to peers (src/agent/peer/policy.ts).
 */
import type { Router } from '../../adapters/api/server.js';
import type { NsPolicy } from '../../core/policy/desired.js';

export interface PolicyNsStatus {
  task: string;
  name: string;
  service: string;
  netns: string | null;
  /** The service's allow-from (null: not set). */
  allowFrom: string[] | null;
  /** Desired filter (null: open, no table). */
  policy: NsPolicy | null;
  /** The last successful apply is the desired filter. */
  applied: boolean;
  error: string | null;
}

export interface PolicyStatusSource {
  status(task?: string): { node: string; namespaces: PolicyNsStatus[] };
}

export function registerPolicyRoutes(router: Router, src: PolicyStatusSource): void {
  router.add('GET', '/v1/policy/status', (r) => ({ json: src.status(r.query.get('task') ?? undefined) }));
}
