/**
 * Response shapes of the agent's load-balancer views (`GET /v1/lb`), read by netctl (`debug lb`,
 * `debug trace`). The one module both sides import: the CLI never reaches into agent internals.
 */
import type { HeldBackend } from '../core/lb/overlay-gate.js';

export interface LbFrontendRow {
  key: string;
  service: string;
  serviceId: string;
  /** Desired backends: task id, address:port, state. */
  backends: Array<{ task: string; target: string; state: 'active' | 'draining'; local: boolean }>;
  /** What the kernel sends new connections to (null: frontend absent from the kernel). */
  kernel: string[] | null;
  /** What the kernel holds at weight 0 (IPVS: draining reals; always empty on nftables). */
  kernelDraining?: string[];
  /** Remote backends not selected yet: this node's overlay has not programmed them (core/lb/overlay-gate.ts). */
  held: Array<{ task: string; target: string; reason: HeldBackend['reason'] }>;
}

export interface LbNsStatus {
  netns: string;
  kind: 'task' | 'ingress' | 'host';
  task: string | null;
  lastApply: { mode: string; changed: number; frontends: number; durationMs: number; at: number | null } | null;
  error: string | null;
  conflicts: string[];
  /** One line per backend held back waiting for the overlay (with the overlay's last error, if any). */
  held: string[];
  frontends: LbFrontendRow[];
  drift: string[];
}
