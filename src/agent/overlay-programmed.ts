/**
 * What the overlay has really programmed, for the load balancer's overlay gate
 * (core/lb/overlay-gate.ts): after each SUCCESSFUL reconcile — which reads the kernel back and
 * verifies it converged — the remote endpoints of that reconcile's input that made it into a
 * hosted sandbox (member node, inside the subnet) become the view `network ip` → `mac@nodeIp`.
 * A failed reconcile leaves the view as it was, so endpoints it should have added stay out
 * (their backends are not selected) until a retry succeeds. Listeners hear every change, and
 * the first finished reconcile whatever its outcome (the LB waits for it before its first
 * apply). Null until the first success: unknown (the gate then holds nothing back).
 */
import type { Logger } from '../adapters/logger.js';
import type { OverlayInput, OverlayReconciler, ReconcileReport } from '../adapters/netlink/overlay.js';
import { programmedOf, sameProgrammed } from '../core/lb/overlay-gate.js';
import type { OverlayConfig } from '../core/overlay/model.js';
import { desiredNode } from '../core/overlay/desired.js';

export class ProgrammedView {
  private view: Map<string, string> | null = null;
  /** Bumped whenever `get()` changes. */
  version = 0;
  /** Reconciles finished (successful or not). */
  private outcomes = 0;
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly config: OverlayConfig, private readonly log: Logger) {}

  get(): ReadonlyMap<string, string> | null {
    return this.view;
  }

  get reconciledOnce(): boolean {
    return this.outcomes > 0;
  }

  onProgress(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * The reconciler to hand to the OverlayService: a prototype-chained view of `inner` (same
   * methods and state) whose `reconcile` also reports what it left in the kernel.
   */
  tracking(inner: OverlayReconciler): OverlayReconciler {
    const wrapped = Object.create(inner) as OverlayReconciler;
    wrapped.reconcile = async (input: OverlayInput): Promise<ReconcileReport> => {
      let r: ReconcileReport;
      try {
        r = await inner.reconcile(input);
      } catch (e) {
        this.finished(null);
        throw e;
      }
      this.finished(input);
      return r;
    };
    return wrapped;
  }

  /** One reconcile finished: `input` when it succeeded, null when it failed. */
  finished(input: OverlayInput | null): void {
    const first = this.outcomes++ === 0;
    let changed = false;
    if (input) {
      const next = programmedOf(desiredNode({ config: this.config, networks: input.networks, remote: input.remote, members: input.members }).state.sandboxes);
      if (!sameProgrammed(this.view, next)) {
        this.view = next;
        this.version++;
        changed = true;
      }
    }
    if (!changed && !first) return;
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err }, 'overlay progress listener failed');
      }
    }
  }
}
