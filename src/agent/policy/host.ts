/**
 * The narrow host interface of the policy subsystem (issue #19): what it reads of the rest of
 * the agent. The composition root (src/agent/subsystems.ts) fills it from the worker and the
 * gossip subsystem; tests fill it with fakes.
 */
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import type { Assignment } from '../../core/assignments.js';
import type { TimerClock } from '../../core/clock.js';
import type { GossipEvent } from '../../core/gossip/index.js';

export interface PolicyHost {
  nodeName: string;
  clock: TimerClock;
  log: Logger;
  exec: Exec;
  /** Gossip events (endpoint table changes) and the tables as they stand. */
  onGossip(l: (ev: GossipEvent) => void): void;
  networks(): string[];
  tableEntries(network: string, table: string): ReadonlyArray<{ key: string; value: Uint8Array }>;
  /** The node's current assignments (the service's CURRENT allow-from rides on them). */
  assignments(): readonly Assignment[];
  /** Told whenever the assignment list was replaced. */
  onAssignments(fn: () => void): void;
  /** The task's named namespace (`ip netns`), or null/undefined while it has none. */
  taskNetns(taskId: string): string | null | undefined;
}
