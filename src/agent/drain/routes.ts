/**
 * The confirmed-drain control API: what this node acked (`/v1/drain/acks`, DrainAcker) and the
 * waits of its stopping tasks (`/v1/drain/waits`, DrainWaiter) — tests and operators read them to
 * see confirmation latencies and who a drain still waits for.
 */
import type { Router } from '../../adapters/api/server.js';
import type { DrainAckView } from './ack.js';
import type { DrainWaitView } from './wait.js';

export function registerDrainAckRoutes(router: Router, acker: { view(): DrainAckView }): void {
  router.add('GET', '/v1/drain/acks', () => ({ json: acker.view() }));
}

export function registerDrainWaitRoutes(router: Router, waiter: { view(): DrainWaitView }): void {
  router.add('GET', '/v1/drain/waits', () => ({ json: waiter.view() }));
}
