/**
 * A part of a daemon with a lifetime and, optionally, control API routes. The agent's subsystems
 * and the manager (which runs inside a manager node's agent) both implement it; it lives here, with
 * the router it registers on, so neither the manager nor the agent imports the other for it.
 */
import type { Router } from './server.js';

export interface Subsystem {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Registers this subsystem's control API routes. */
  routes?(router: Router): void;
}
