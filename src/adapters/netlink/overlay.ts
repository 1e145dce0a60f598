/**
 * The overlay's reconcile loop at the kernel edge: read back → diff → apply → verify.
 * A `fresh` reconcile (the default; the service asks for one on its first run, every periodic resync, every
 * retry after a failure, a manual reconcile and every structural change) starts from what the kernel holds,
 * so an agent restart (or someone deleting an FDB entry by hand) is repaired by it, and verifies by reading
 * the kernel again. A reconcile for remote endpoint and member changes alone (`fresh: false`) starts from the
 * state the last successful reconcile left (read back, or computed for entry operations: core/overlay/entries.ts)
 * and, when it applies entry operations only, computes the state after them instead of reading it: under churn
 * that is one `ip`/`bridge` batch per reconcile instead of 2 × (2 + 3 × sandboxes) processes. Drift nobody told
 * us about is then repaired by the next fresh reconcile (the periodic resync, 30 s by default) — kube-proxy's
 * model (apply from the last known state, full resync on failure and periodically). Running tasks keep their
 * veths (never touched here).
 *
 * The VXLAN guard is ensured FIRST; if it cannot be installed nothing is created or
 * changed and the call throws (fail closed).
 */
import { MeshError } from '../../core/errors.js';
import { desiredNode, type DesiredNode } from '../../core/overlay/desired.js';
import { additionsOnly, canonical, diff, type Op, renderBatches, toBatches } from '../../core/overlay/diff.js';
import { applyEntryOps } from '../../core/overlay/entries.js';
import type { NodeState, OverlayConfig, OverlayNetwork, RemoteEndpoint } from '../../core/overlay/model.js';
import type { Exec } from '../exec.js';
import type { VxlanGuard } from '../firewall/vxlan-guard.js';
import { type ApplyStats, applyBatches } from './apply.js';
import { readNode } from './read.js';

export interface OverlayKernel {
  read(): Promise<NodeState>;
  apply(ops: readonly Op[]): Promise<ApplyStats>;
}

/** Real kernel through iproute2: batched per namespace and tool. */
export class IpOverlayKernel implements OverlayKernel {
  constructor(private readonly exec: Exec, private readonly prefix: string, private readonly hostNs: string | null) {}
  read(): Promise<NodeState> {
    return readNode(this.exec, this.prefix, this.hostNs);
  }
  apply(ops: readonly Op[]): Promise<ApplyStats> {
    return applyBatches(this.exec, toBatches(ops), this.hostNs);
  }
}

export interface OverlayInput {
  /** Networks hosted on this node. */
  networks: readonly OverlayNetwork[];
  /** Remote endpoints from gossip. */
  remote: readonly RemoteEndpoint[];
  /** Current members' underlay addresses (required: it is the VXLAN guard's allow-list). */
  members: readonly string[];
}

export interface ReconcileReport {
  /** Operations applied (0 when already converged). */
  ops: number;
  processes: number;
  /** The plan that was applied, rendered as shell-like text (empty when converged). */
  plan: string;
  /** The kernel state at the end (what the overlay holds now): read back, or computed for entry operations. */
  actual?: NodeState;
  /** Kernel reads this reconcile made (0 for an entry-only change from the last known state). */
  reads?: number;
}

/**
 * A failed reconcile's error carries the kernel state read back after the attempt when one
 * could be read (`actual`): a partial apply still programmed most entries, and the LB's overlay
 * gate should see those (one persistently failing sandbox must not freeze what it knows).
 */
export function actualOfError(e: unknown): NodeState | undefined {
  return e !== null && typeof e === 'object' ? ((e as { actual?: NodeState }).actual ?? undefined) : undefined;
}

function withActual<E>(e: E, actual: NodeState | null): E {
  if (actual && e !== null && typeof e === 'object' && Object.isExtensible(e)) Object.defineProperty(e, 'actual', { value: actual, enumerable: false });
  return e;
}

export interface OverlayStatus {
  desired: DesiredNode;
  actual: NodeState;
  /** What a reconcile would do now; empty = no drift. */
  drift: Op[];
}

export class OverlayReconciler {
  /** What the kernel held when the last successful reconcile ended; null until one, and after any failure. */
  private known: NodeState | null = null;
  /** Reconciles that started from the last known state instead of a read, and those that also skipped the verify read. */
  readonly counters = { fromKnown: 0, modelled: 0 };

  constructor(
    private readonly config: OverlayConfig,
    private readonly kernel: OverlayKernel,
    private readonly guard: VxlanGuard,
  ) {}

  /** Desired vs actual without changing anything (for `netctl debug fdb|sandbox`): always read from the kernel. */
  async status(input: OverlayInput): Promise<OverlayStatus> {
    const desired = this.desired(input);
    const actual = await this.kernel.read();
    return { desired, actual, drift: diff(desired.state, actual) };
  }

  /**
   * Makes the kernel match `input`; with `additionsOnly`, only adds and repairs (core/overlay/diff.ts
   * `additionsOnly`): what an agent may do before gossip has synced after a restart. `fresh: false` may start
   * from the last known state (file comment); default true.
   */
  async reconcile(input: OverlayInput, opts: { additionsOnly?: boolean; fresh?: boolean } = {}): Promise<ReconcileReport> {
    const desired = this.desired(input);
    // Before gossip has synced the member list is partial: the guard keeps the allow-list it had.
    if (!opts.additionsOnly) await this.guard.ensure(this.config.vxlanPort, desired.guardAllow);
    const fromKnown = opts.fresh === false ? this.known : null;
    this.known = null; // until this reconcile ends well
    let reads = 0;
    const read = (): Promise<NodeState> => (reads++, this.kernel.read());
    const actual = fromKnown ?? await read();
    if (fromKnown) this.counters.fromKnown++;
    const planOf = (a: NodeState): Op[] => (opts.additionsOnly ? additionsOnly(diff(desired.state, a)) : diff(desired.state, a));
    const ops = planOf(actual);
    if (ops.length === 0) {
      this.known = actual;
      return { ops: 0, processes: 0, plan: '', actual, reads };
    }
    const plan = renderBatches(toBatches(ops), this.config.hostNs);
    let stats: { processes: number };
    try {
      stats = await this.kernel.apply(ops);
    } catch (e) {
      throw withActual(e, await read().catch(() => null));
    }
    const modelled = fromKnown ? applyEntryOps(actual, ops) : null;
    if (modelled) this.counters.modelled++;
    const after = modelled ?? await read();
    const left = planOf(after);
    if (left.length > 0 || (!opts.additionsOnly && canonical(after) !== canonical(desired.state))) {
      throw withActual(new MeshError('MESHD_INTERNAL', `overlay did not converge: ${left.length} operation(s) still pending`, {
        pending: renderBatches(toBatches(left), this.config.hostNs),
      }), after);
    }
    this.known = after;
    return { ops: ops.length, processes: stats.processes, plan, actual: after, reads };
  }

  private desired(input: OverlayInput): DesiredNode {
    return desiredNode({ config: this.config, networks: input.networks, remote: input.remote, members: input.members });
  }
}

export function ipOverlay(exec: Exec, config: OverlayConfig, guard: VxlanGuard): OverlayReconciler {
  return new OverlayReconciler(config, new IpOverlayKernel(exec, config.prefix, config.hostNs), guard);
}
