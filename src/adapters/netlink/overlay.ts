/**
 * The overlay's reconcile loop at the kernel edge: read back → diff → apply → verify.
 * There is no cached copy of what was applied: every reconcile starts from what the
 * kernel holds, so an agent restart (or someone deleting an FDB entry by hand) is
 * repaired by the next call, and running tasks keep their veths (never touched here).
 *
 * The VXLAN guard is ensured FIRST; if it cannot be installed nothing is created or
 * changed and the call throws (fail closed).
 */
import { MeshError } from '../../core/errors.js';
import { desiredNode, type DesiredNode } from '../../core/overlay/desired.js';
import { additionsOnly, canonical, diff, type Op, renderBatches, toBatches } from '../../core/overlay/diff.js';
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
  /** The kernel state read back at the end (what the overlay holds now). */
  actual?: NodeState;
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
  constructor(
    private readonly config: OverlayConfig,
    private readonly kernel: OverlayKernel,
    private readonly guard: VxlanGuard,
  ) {}

  /** Desired vs actual without changing anything (for `netctl debug fdb|sandbox`). */
  async status(input: OverlayInput): Promise<OverlayStatus> {
    const desired = this.desired(input);
    const actual = await this.kernel.read();
    return { desired, actual, drift: diff(desired.state, actual) };
  }

  /**
   * Makes the kernel match `input`; with `additionsOnly`, only adds and repairs (core/overlay/diff.ts
   * `additionsOnly`): what an agent may do before gossip has synced after a restart.
   */
  async reconcile(input: OverlayInput, opts: { additionsOnly?: boolean } = {}): Promise<ReconcileReport> {
    const desired = this.desired(input);
    // Before gossip has synced the member list is partial: the guard keeps the allow-list it had.
    if (!opts.additionsOnly) await this.guard.ensure(this.config.vxlanPort, desired.guardAllow);
    const actual = await this.kernel.read();
    const planOf = (a: NodeState): Op[] => (opts.additionsOnly ? additionsOnly(diff(desired.state, a)) : diff(desired.state, a));
    const ops = planOf(actual);
    if (ops.length === 0) return { ops: 0, processes: 0, plan: '', actual };
    const plan = renderBatches(toBatches(ops), this.config.hostNs);
    let stats: { processes: number };
    try {
      stats = await this.kernel.apply(ops);
    } catch (e) {
      throw withActual(e, await this.kernel.read().catch(() => null));
    }
    const after = await this.kernel.read();
    const left = planOf(after);
    if (left.length > 0 || (!opts.additionsOnly && canonical(after) !== canonical(desired.state))) {
      throw withActual(new MeshError('MESHD_INTERNAL', `overlay did not converge: ${left.length} operation(s) still pending`, {
        pending: renderBatches(toBatches(left), this.config.hostNs),
      }), after);
    }
    return { ops: ops.length, processes: stats.processes, plan, actual: after };
  }

  private desired(input: OverlayInput): DesiredNode {
    return desiredNode({ config: this.config, networks: input.networks, remote: input.remote, members: input.members });
  }
}

export function ipOverlay(exec: Exec, config: OverlayConfig, guard: VxlanGuard): OverlayReconciler {
  return new OverlayReconciler(config, new IpOverlayKernel(exec, config.prefix, config.hostNs), guard);
}
