/**
 * The agent's policy subsystem (issue #19): from the node's assignments (each local task's
 * service allow-from and its networks' default-deny) and the `endpoints` gossip tables (which
 * address belongs to which service), an nftables filter in every local task's namespace that
 * accepts new connections to the task only from allowed services' tasks, and REJECTS the rest
 * (TCP reset / ICMP port unreachable: a denied client learns it at once).
 *
 * The meaning and the nft text are pure (src/core/policy); this shell keeps the table state it
 * was fed, marks the task namespaces a change can touch in the one ReconcileLoop, and applies
 * `renderDelta(last applied, desired)` per namespace: an endpoint change is one `nft -f -` with a
 * few `add/delete element` lines, a rule change one atomic table re-creation. A failed delta is
 * retried at once as a full render (the kernel drifted from what we applied), and a failed full
 * render goes back to the loop (back-off, never dropped). Open tasks (no allow-from, no
 * default-deny network) get no table and cost nothing.
 *
 * The same filter serves both dataplanes: it sits in the task's namespace input hook, after
 * whatever DNAT (nftables or IPVS) chose this task in the client's namespace.
 */
import type { Router } from '../../adapters/api/server.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Assignment } from '../../core/assignments.js';
import type { Timer } from '../../core/clock.js';
import { ENDPOINT_TABLE, decodeEndpoint } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import { desiredPolicy, type NsPolicy, type PolicyEndpoint, type PolicyTask } from '../../core/policy/desired.js';
import { renderDelta, renderFull, renderRemove } from '../../core/policy/render.js';
import type { Subsystem } from '../agent.js';
import type { PolicyHost } from './host.js';
import { registerPolicyRoutes, type PolicyNsStatus } from './routes.js';

/** Safety net: every local task is re-planned this often (a namespace that appeared late, a missed event). */
export const POLICY_RESYNC_MS = 10_000;

interface Applied {
  netns: string;
  policy: NsPolicy | null;
  error: string | null;
}

export function policyTaskOf(a: Assignment): PolicyTask {
  return {
    taskId: a.task.id, serviceName: a.task.serviceName, allowFrom: a.allowFrom,
    attachments: a.attachments.map((x) => ({ networkId: x.network.id, networkName: x.network.name, ip: x.ip, ...(x.ip6 !== undefined ? { ip6: x.ip6 } : {}), defaultDeny: x.network.defaultDeny === true })),
  };
}

export class PolicySubsystem implements Subsystem {
  readonly name = 'policy';
  /** network id → task id → the endpoint's service and address. */
  private readonly endpoints = new Map<string, Map<string, PolicyEndpoint>>();
  private readonly applied = new Map<string, Applied>();
  private loop: ReconcileLoop<string> | undefined;
  private timer: Timer | null = null;
  private stopped = true;
  readonly counters = { applies: 0, deltas: 0, fulls: 0, failures: 0, badRecords: 0 };

  constructor(private readonly h: PolicyHost) {
    h.onGossip((ev) => this.onGossip(ev));
    h.onAssignments(() => this.markAll());
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.loop = new ReconcileLoop<string>({
      clock: this.h.clock, run: (keys) => this.run(keys),
      onError: (err, keys) => this.h.log.error({ err, tasks: keys }, 'policy sync failed (retrying)'),
    });
    for (const net of this.h.networks()) {
      for (const e of this.h.tableEntries(net, ENDPOINT_TABLE)) this.setEndpoint(net, e.key, e.value);
    }
    this.markAll();
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.loop?.stop();
    // Filters stay in the kernel: a restarting agent must not open every guarded task meanwhile.
  }

  routes(router: Router): void {
    registerPolicyRoutes(router, { status: (task) => this.status(task) });
  }

  /** Resolves when no apply is running or pending (tests). */
  async idle(): Promise<void> {
    await this.loop?.idle();
  }

  /**
   * Called by the worker before a task's application starts in `netns` (like DNS's bind): the
   * filter is in place at the application's first instruction, so there is no open window.
   * Never throws: a failure leaves the key to the loop, which retries.
   */
  async prepare(netns: string): Promise<void> {
    const a = this.h.assignments().find((x) => netns.endsWith(`t-${x.task.id.slice(0, 12)}`));
    if (!a || this.stopped) return;
    try {
      // The namespace is named here: the worker's view has none until the runtime's start returns
      // (this runs inside it), and without it syncTask applied nothing — the application ran unfiltered
      // until its own endpoint's event planned the task again.
      await this.syncTask(a.task.id, netns);
    } catch (e) {
      this.h.log.warn({ err: toMeshError(e).message, netns }, 'policy not applied before the task started; the loop retries');
      this.loop?.mark(a.task.id);
    }
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.h.clock.setTimer(POLICY_RESYNC_MS, () => {
      this.timer = null;
      this.markAll();
      this.arm();
    });
  }

  private markAll(): void {
    if (this.stopped) return;
    const keys = new Set([...this.h.assignments().map((a) => a.task.id), ...this.applied.keys()]);
    for (const k of keys) this.loop?.mark(k);
  }

  private onGossip(ev: GossipEvent): void {
    if ((ev.type !== 'create' && ev.type !== 'update' && ev.type !== 'delete') || ev.table !== ENDPOINT_TABLE) return;
    if (ev.type === 'delete') this.endpoints.get(ev.network)?.delete(ev.key);
    else if (!this.setEndpoint(ev.network, ev.key, ev.value)) return;
    if (this.stopped) return;
    // Only tasks attached to the changed network can be affected.
    for (const a of this.h.assignments()) if (a.attachments.some((x) => x.network.id === ev.network)) this.loop?.mark(a.task.id);
  }

  private setEndpoint(network: string, key: string, value: Uint8Array): boolean {
    const d = decodeEndpoint(value);
    if (!d.ok || d.record.network !== network) {
      this.counters.badRecords++;
      return false;
    }
    let m = this.endpoints.get(network);
    if (!m) this.endpoints.set(network, (m = new Map()));
    m.set(key, { serviceName: d.record.serviceName, ip: d.record.ip, ...(d.record.ip6 !== undefined ? { ip6: d.record.ip6 } : {}) });
    return true;
  }

  private desiredOf(a: Assignment | undefined): NsPolicy | null {
    if (!a || a.desiredState !== 'running') return null;
    return desiredPolicy(policyTaskOf(a), (net) => this.endpoints.get(net)?.values() ?? []);
  }

  private async run(keys: string[]): Promise<string[]> {
    const failed: string[] = [];
    for (const k of keys) {
      try {
        await this.syncTask(k);
      } catch (e) {
        failed.push(k);
        this.h.log.error({ err: toMeshError(e).message, task: k }, 'policy apply failed (retrying)');
      }
    }
    return failed;
  }

  /** One namespace: the smallest script from what was applied to what is desired. */
  /** `startingIn`: the namespace of a task being started (prepare), which the worker's view does not show yet. */
  private async syncTask(taskId: string, startingIn?: string): Promise<void> {
    const a = this.h.assignments().find((x) => x.task.id === taskId);
    const netns = startingIn ?? this.h.taskNetns(taskId) ?? null;
    const prev = this.applied.get(taskId);
    if (!a || a.desiredState !== 'running' || !netns) {
      // The task is gone or going (its namespace leaves with it): forget, never touch a dead namespace.
      // A task without a namespace yet is planned again by its own endpoint's event or prepare().
      if (!a || a.desiredState !== 'running' || prev) this.applied.delete(taskId);
      return;
    }
    const next = this.desiredOf(a);
    const base = prev && prev.netns === netns && prev.error === null ? prev.policy : undefined;
    let script = base === undefined ? (next ? renderFull(next) : prev ? renderRemove() : '') : renderDelta(base, next);
    if (!script) {
      if (!prev) this.applied.set(taskId, { netns, policy: next, error: null });
      return;
    }
    const full = base === undefined || next === null || script.startsWith('add table');
    let r = await this.h.exec.run('nft', ['-f', '-'], { netns, input: script });
    this.counters.applies++;
    if (r.code !== 0 && !full && next) {
      // An element delta failed: the kernel is not what we applied. Resync the whole table.
      this.h.log.warn({ task: taskId, netns, err: r.stderr.trim().slice(0, 300) }, 'policy delta failed; full resync');
      script = renderFull(next);
      r = await this.h.exec.run('nft', ['-f', '-'], { netns, input: script });
      this.counters.applies++;
    }
    if (r.code !== 0) {
      this.counters.failures++;
      const err = r.stderr.trim().slice(0, 500) || `nft exited ${r.code}`;
      this.applied.set(taskId, { netns, policy: next, error: err });
      throw new MeshError('MESHD_EXEC_FAILED', `policy of task ${taskId} in ${netns}: ${err}`);
    }
    if (script.startsWith('add table')) this.counters.fulls++;
    else this.counters.deltas++;
    this.applied.set(taskId, { netns, policy: next, error: null });
  }

  /** `GET /v1/policy/status[?task=ID]`: per local task, the desired policy and whether it is applied. */
  status(task?: string): { node: string; namespaces: PolicyNsStatus[] } {
    const out: PolicyNsStatus[] = [];
    for (const a of this.h.assignments()) {
      if (task && a.task.id !== task && !a.task.id.startsWith(task) && a.task.name !== task) continue;
      const desired = this.desiredOf(a);
      const ap = this.applied.get(a.task.id);
      out.push({
        task: a.task.id, name: a.task.name, service: a.task.serviceName, netns: this.h.taskNetns(a.task.id) ?? null,
        allowFrom: a.allowFrom ?? null, policy: desired,
        applied: !!ap && ap.error === null && JSON.stringify(ap.policy) === JSON.stringify(desired),
        error: ap?.error ?? null,
      });
    }
    return { node: this.h.nodeName, namespaces: out };
  }
}
