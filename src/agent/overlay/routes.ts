/**
 * The overlay's control API: what `netctl debug fdb|sandbox` reads (desired vs what the kernel
 * holds, read back now) and a manual reconcile that answers once it has run.
 */
import type { Router } from '../../adapters/api/server.js';
import { MeshError } from '../../core/errors.js';
import { fdbRows, sandboxRows } from '../../core/overlay/debug.js';
import type { OverlayStatus, ReconcileReport } from '../../adapters/netlink/overlay.js';
import type { OverlayGuardView } from './guard.js';
import type { OverlayMtuView } from './mtu.js';

/** What the routes read of the overlay subsystem (overlay.ts implements it; no import back, so no cycle). */
export interface OverlayRoutesHost {
  readonly nodeName: string;
  readonly started: boolean;
  readonly lastReport: ReconcileReport | null;
  status(): Promise<OverlayStatus & { badRecords: Record<string, number>; lastError: unknown; active: boolean; mtu: OverlayMtuView | null;
    guard: OverlayGuardView | null;
  }>;
  findNetwork(nameOrId: string): { id: string } | undefined;
  programmed(): ReadonlyMap<string, string> | null;
  kick(): void;
  settled(): Promise<void>;
  readonly mtu: { view(): OverlayMtuView | null; probeNow(): Promise<void> };
}

export function registerOverlayRoutes(router: Router, overlay: OverlayRoutesHost): void {
  router.add('GET', '/v1/overlay/status', async (r) => {
    const st = await overlay.status();
    const net = r.query.get('network') ?? undefined;
    const byName = net ? overlay.findNetwork(net) : undefined;
    if (net && !byName) throw new MeshError('MESHD_NOT_FOUND', `network ${net} is not known on ${overlay.nodeName}`);
    return {
      json: {
        node: overlay.nodeName,
        active: st.active,
        drift: st.drift.length,
        lastError: st.lastError,
        badRecords: st.badRecords,
        guardAllow: st.desired.guardAllow,
        guard: st.guard,
        programmed: overlay.programmed()?.size ?? null,
        fdb: fdbRows(st.desired.state, st.actual, byName?.id),
        sandboxes: sandboxRows(st.desired.state, st.actual),
        strayHostLinks: st.actual.strayHostLinks,
        mtu: st.mtu,
      },
    };
  });
  // The automatic MTU (agent/overlay/mtu.ts): what it is and why; POST runs a probe round now.
  router.add('GET', '/v1/overlay/mtu', async () => ({ json: { node: overlay.nodeName, mtu: overlay.mtu.view() } }));
  router.add('POST', '/v1/overlay/mtu/probe', async () => {
    await overlay.mtu.probeNow();
    return { json: { node: overlay.nodeName, mtu: overlay.mtu.view() } };
  });
  router.add('POST', '/v1/overlay/reconcile', async () => {
    if (!overlay.started) throw new MeshError('MESHD_NOT_READY', 'overlay is not active yet (waiting for gossip to sync)');
    overlay.kick();
    await overlay.settled();
    return { json: { ok: true, report: overlay.lastReport } };
  });
}
