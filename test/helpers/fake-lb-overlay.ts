/**
 * The overlay as the LB's gate sees it (agent/lb tests): remote backends are selected once
 * `program`med, as after the overlay's reconcile of their records succeeded.
 */
import type { EndpointRecord } from '../../src/core/endpoints.js';
import { endpointKey, locationKey } from '../../src/core/lb/overlay-gate.js';

export class FakeLbOverlay {
  active = true;
  reconciledOnce = true;
  programmedVersion = 0;
  lastErrorMessage: string | null = null;
  private view = new Map<string, string>();
  private readonly listeners: Array<() => void> = [];
  programmed(): ReadonlyMap<string, string> {
    return this.view;
  }
  memberIps(): string[] {
    return ['10.99.1.1', '10.99.1.2', '10.99.1.3'];
  }
  onProgress(l: () => void): void {
    this.listeners.push(l);
  }
  /** The overlay's reconcile of these records succeeded. */
  program(...recs: EndpointRecord[]): void {
    this.view = new Map(this.view);
    for (const r of recs) this.view.set(endpointKey(r.network, r.ip), locationKey(r));
    this.programmedVersion++;
    for (const l of this.listeners) l();
  }
}
