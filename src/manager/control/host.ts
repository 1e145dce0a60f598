/**
 * What the control plane's route modules need from it. Routes take this narrow view instead of
 * the `ControlPlane` class, so control.ts → routes.ts is the only arrow (no import cycle), and a
 * reader sees at once that a route can only serialize a change, read the clock, kick the loop
 * and start/replace rolling updates.
 */
import type { RollingUpdate } from '../../core/orchestrator/index.js';
import type { ControlState } from './state.js';
import type { ControlPlaneOptions } from './options.js';

/** A read's input (JSON), the store revision its state was loaded at, and its answer (routes.ts `memoized`). */
export interface Memo {
  input: string;
  revision: number;
  answer: unknown;
}

export interface ControlHost {
  readonly o: Pick<ControlPlaneOptions, 'manager' | 'liveness'>;
  readonly updaters: Map<string, RollingUpdate>;
  now(): number;
  kick(): void;
  serialize<T>(fn: (st: ControlState) => T | Promise<T>): Promise<T>;
  /** Answers of per-node rounds by key (routes.ts `memoized`: the same input on an unchanged store is answered from here). */
  readonly memos: Map<string, Memo>;
  /** The store's current revision. */
  storeRevision(): Promise<number>;
}
