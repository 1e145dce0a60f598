/**
 * The dataplane edge: programs the desired load-balancing state of one network namespace into the
 * kernel (nftables or IPVS) and reads back what the kernel actually holds.
 */
import type { StaleTarget } from '../../core/lb/ct-flush.js';
import type { KernelLbState } from '../../core/lb/kernel.js';
import type { LbDesired } from '../../core/lb/model.js';
import type { IdleTimeouts } from '../../core/lb/timeouts.js';

export interface NetnsOptions {
  /** Named network namespace (`ip netns`); undefined = the daemon's own namespace. */
  netns?: string;
  /**
   * Set the per-namespace idle timeouts and sysctls on full syncs (default true). False for the
   * node's own namespace (host publish mode), whose conntrack settings belong to the host.
   */
  sysctls?: boolean;
}

export interface ApplyResult {
  backend: 'nftables' | 'ipvs' | 'memory';
  mode: 'full' | 'incremental' | 'noop';
  /** Frontends (VIP:port or published port) touched by this transaction. */
  changed: number;
  /** Frontends in force after it. */
  frontends: number;
  /** Bytes of script sent to the kernel tools. */
  bytes: number;
  /** Wall time of the apply, milliseconds. */
  durationMs: number;
  /**
   * Backends this apply took out of frontends (core/lb/ct-flush.ts): the caller deletes their
   * conntrack entries (conntrack.ts), after the apply so no packet re-creates one to them.
   */
  stale: StaleTarget[];
}

export interface Dataplane {
  readonly kind: 'nftables' | 'ipvs' | 'memory';
  /**
   * Makes the kernel hold `desired` in one transaction. Throws MESHD_BAD_ARGUMENT for an invalid
   * desired state (nothing applied) and MESHD_EXEC_FAILED when the kernel tools fail; after any
   * failure the next apply for that namespace is a full resync.
   */
  apply(desired: LbDesired, opts?: NetnsOptions): Promise<ApplyResult>;
  /** What the kernel holds now, in the backend-neutral shape (empty when nothing is programmed). */
  readKernel(opts?: NetnsOptions): Promise<KernelLbState>;
  /** Removes everything this dataplane programmed in the namespace; next apply is full. */
  flush(opts?: NetnsOptions): Promise<void>;
  /** Drift was found behind our back: the next apply for the namespace is a full resync. */
  requestFullResync(opts?: NetnsOptions): void;
  /**
   * The namespace is gone (its task stopped and the agent no longer plans it): drop what this
   * dataplane keeps for it (its sync state). Touches no kernel; an apply there later is a full one.
   */
  forget(opts?: NetnsOptions): void;
  /** Namespaces this dataplane keeps sync state for (returns to 0 when every task is gone). */
  syncedNamespaces(): number;
}

export interface DataplaneOptions {
  /** Idle timeouts set on full syncs (see core/lb/timeouts.ts); default DEFAULT_IDLE_TIMEOUTS. */
  timeouts?: IdleTimeouts;
}
