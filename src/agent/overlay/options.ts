/**
 * The overlay subsystem's inputs: what it uses of the gossip subsystem (GossipPort, also used by
 * the worker, the LB and drain), its options with their defaults, and how a gossip member event
 * maps onto the dead-member grace (core/overlay/remotes.ts). Apart from overlay.ts so that the
 * subsystem file holds only the shell's behaviour.
 */
import type { Logger } from '../../adapters/logger.js';
import type { Exec } from '../../adapters/exec.js';
import type { VxlanGuard } from '../../adapters/firewall/vxlan-guard.js';
import type { OverlayKernel } from '../../adapters/netlink/overlay.js';
import type { TimerClock } from '../../core/clock.js';
import type { GossipEvent, GossipNode } from '../../core/gossip/index.js';
import type { RemotesEvent } from '../../core/overlay/remotes.js';
import type { GuardPacerConfig } from '../../core/overlay/guard-pacer.js';
import type { OverlayTimers } from '../../core/overlay/state.js';
import type { OverlayMtuOptions } from './mtu.js';

/** What the overlay and the worker use of the gossip subsystem (GossipSubsystem satisfies it). */
export interface GossipPort {
  readonly core: Pick<GossipNode, 'members' | 'member' | 'networks' | 'tableEntries' | 'networkNodes' | 'joinNetwork' | 'leaveNetwork' | 'tableSet' | 'tableDelete'>;
  onEvent(listener: (ev: GossipEvent) => void): void;
  /** Flushes what direct core calls queued (sends, events). */
  pump(): void;
}

export interface OverlaySubsystemOptions {
  nodeName: string;
  /** This node's underlay address (VXLAN local, endpoint nodeIp). */
  underlayIp: string;
  /** Namespace prefix for sandboxes (`<prefix>ov-<net>`). */
  prefix: string;
  gossip: GossipPort;
  /** Time and timers (the reconcile loop, the dead-member grace, the sync wait). */
  clock: TimerClock;
  log: Logger;
  exec: Exec;
  /**
   * Underlay link MTU in bytes; default: read from the interface holding underlayIp (again each
   * probe round), else 1500. The overlay is built on the smallest path to any peer (mtu.ts).
   */
  underlayMtu?: number;
  /** Automatic MTU: path-MTU probes to peers (agent/overlay/mtu.ts); defaults DEFAULT_OVERLAY_MTU. */
  mtu?: Partial<OverlayMtuOptions>;
  vxlanPort?: number;
  timers?: OverlayTimers;
  /** How long activate() waits for gossip to sync before reconciling anyway (ms). */
  syncTimeoutMs?: number;
  /** How long removals caused by a member's death are held back (ms). */
  deadGraceMs?: number;
  /** Test seam: a kernel other than iproute2 (the reconciler around it is always the real one). */
  kernel?: OverlayKernel;
  /** Test seam: a VXLAN guard other than nftables (written only by the paced OverlayGuard). */
  guard?: VxlanGuard;
  /** Test seam: the guard's pacing (core/overlay/guard-pacer.ts defaults). */
  guardPacer?: Partial<GuardPacerConfig>;
  /** Test seam: the path-MTU probe (default: DF pings, adapters/netlink/pmtu.ts). */
  mtuProbe?: (peers: readonly string[], max: number) => Promise<Record<string, number | null>>;
}

export const DEFAULT_SYNC_TIMEOUT_MS = 10_000;
/** How often activate() looks again whether gossip has synced (ms). */
export const SYNC_POLL_MS = 100;

/** Gossip member event → what it means for the grace. */
export function memberChange(type: string): Extract<RemotesEvent, { type: 'member' }>['change'] {
  if (type === 'member-dead') return 'dead';
  if (type === 'member-join' || type === 'member-alive') return 'alive';
  if (type === 'member-left') return 'left';
  return 'other';
}
