/**
 * Options of the control plane (its own file so the route modules can name them without importing control.ts).
 */
import type { MeshError } from '../../core/errors.js';
import type { Manager } from '../manager.js';
import type { Liveness } from './engine.js';

export interface ControlPlaneOptions {
  manager: Manager;
  /** Gossip membership of this manager's agent (node name → member state). */
  liveness: Liveness;
  /** Wall-clock ms (task timestamps are persisted and shown). */
  now?: () => number;
  /** Period of the background step (ms); default 500. */
  tickMs?: number;
  /** A node that never appears in gossip is down after this long (ms); default 15000. */
  absentGraceMs?: number;
  /** How long gossip has held each member in its state (ms); with `downGraceMs`, delays "down" for dead members. */
  stateAge?: (hostname: string) => number | undefined;
  /** A node dead in gossip is down (tasks rescheduled) only after this long (ms); default 0. */
  downGraceMs?: number;
  isLeader?: () => boolean;
  onError?: (e: MeshError) => void;
  /** Told which services' updates a new leadership term resumed (for the log). */
  onResume?: (serviceIds: string[]) => void;
}
