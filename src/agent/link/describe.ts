/**
 * This node's description for the manager (its runtimes and engine), re-detected every
 * `everyMs` (cheap: one local request) and sent on every status report, so a new leader learns
 * it on the next round; logged when it changes. Losing a runtime is confirmed by a second
 * detection on the next round (a busy engine may miss one short deadline); gaining one is taken
 * at once.
 */
import type { Logger } from '../../adapters/logger.js';
import type { RuntimeDetection } from '../../adapters/runtime/detect.js';
import type { Clock } from '../../core/clock.js';
import type { NodeDescription } from '../../core/spec/runtime.js';

export class NodeDescriber {
  private description: NodeDescription | undefined;
  private describedAt = -Infinity;
  private lastLogged = '';
  /** Consecutive detections that lost a runtime the node had. */
  private losses = 0;

  constructor(private readonly detect: () => Promise<RuntimeDetection>, private readonly clock: Clock, private readonly log: Logger, private readonly everyMs = 10_000) {}

  async current(): Promise<NodeDescription> {
    const now = this.clock.now();
    if (this.description && now - this.describedAt < this.everyMs) return this.description;
    const d = await this.detect();
    const lost = this.description?.runtimes.some((r) => !d.description.runtimes.includes(r)) ?? false;
    if (lost && this.losses++ === 0) return this.description!;
    this.losses = 0;
    this.description = d.description;
    this.describedAt = now;
    const text = JSON.stringify(d.description);
    if (text !== this.lastLogged) {
      this.log.info({ runtimes: d.description.runtimes, engine: d.description.engine ?? null, ...(d.dockerProblem ? { docker: d.dockerProblem } : {}) }, 'node runtimes');
      this.lastLogged = text;
    }
    return d.description;
  }
}
