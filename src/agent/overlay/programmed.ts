/**
 * What the overlay has really programmed, for the load balancer's overlay gate
 * (core/lb/overlay-gate.ts): after each reconcile, the remote endpoints the kernel holds as the
 * reconciler READ THEM BACK at its end (neighbour entry + FDB entry to the node), in the
 * sandboxes of that reconcile's networks — `network ip` → `mac@nodeIp`. A failed reconcile
 * reports what it read back after its partial apply when it could (one sandbox that fails to
 * converge must not freeze the view for every other network: the gate would hold every new
 * remote backend back); when nothing was read back the view stays as it was. A reconciler that
 * reports no read-back (test fakes) gives the view of its input on success. Listeners hear
 * every change, and the first finished reconcile whatever its outcome (the LB waits for it
 * before its first apply). Null until the first view: unknown (the gate then holds nothing back).
 */
import type { Logger } from '../../adapters/logger.js';
import { actualOfError, type OverlayInput, type OverlayReconciler, type ReconcileReport } from '../../adapters/netlink/overlay.js';
import { programmedOf, sameProgrammed } from '../../core/lb/overlay-gate.js';
import type { NodeState, OverlayConfig } from '../../core/overlay/model.js';
import { desiredNode } from '../../core/overlay/desired.js';

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
    wrapped.reconcile = async (input: OverlayInput, opts?: { additionsOnly?: boolean; fresh?: boolean }): Promise<ReconcileReport> => {
      let r: ReconcileReport;
      try {
        r = await inner.reconcile(input, opts);
      } catch (e) {
        const actual = actualOfError(e);
        this.finished(actual ? { input, actual } : null);
        throw e;
      }
      this.finished({ input, actual: r.actual ?? null });
      return r;
    };
    return wrapped;
  }

  /**
   * One reconcile finished: its input and the kernel state it read back at the end (null:
   * none, then the input's desired state when it succeeded), or null when it failed with
   * nothing read back.
   */
  finished(done: { input: OverlayInput; actual: NodeState | null } | null): void {
    const first = this.outcomes++ === 0;
    let changed = false;
    if (done) {
      const desired = desiredNode({ config: this.config, networks: done.input.networks, remote: done.input.remote, members: done.input.members }).state.sandboxes;
      let sandboxes = desired;
      if (done.actual) {
        // Read-back sandboxes are named by namespace; only this reconcile's networks count.
        const networkOf = new Map(desired.map((s) => [s.ns, s.network]));
        sandboxes = done.actual.sandboxes.filter((s) => networkOf.has(s.ns)).map((s) => ({ ...s, network: networkOf.get(s.ns)! }));
      }
      const next = programmedOf(sandboxes);
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
