/**
 * What the worker hands a runtime to start a task (its spec and one attachment per network,
 * plumbed into the overlay sandbox of that network), and the readiness wait after the start:
 * a task is published `running` only once it serves its target ports (ready.ts), so a program
 * that exits at once never becomes a backend. And the runtimes themselves, and what they still
 * hold at agent start.
 */
import { join } from 'node:path';
import type { Logger } from '../../adapters/logger.js';
import { DEFAULT_DOCKER_SOCKET, DockerRuntime } from '../../adapters/runtime/docker.js';
import { NetnsRuntime } from '../../adapters/runtime/netns.js';
import type { Attachment as RuntimeAttachment, Runtime, TaskInfo, TaskSpec } from '../../adapters/runtime/types.js';
import type { Assignment } from '../../core/assignments.js';
import { MeshError } from '../../core/errors.js';
import type { MountSpec } from '../../core/spec/container.js';
import { BRIDGE_NAME, sandboxName } from '../../core/overlay/model.js';
import { shortId } from '../../core/worker/converge.js';
import type { OverlaySubsystem } from '../overlay/overlay.js';
import { overlayNetworkOf, programOf } from './plan.js';
import type { PortRef, Readiness } from './ready.js';
import type { StartTiming, WorkerOptions } from './types.js';

export const DEFAULT_WHOAMI_IMAGE = 'meshd-busybox:test';

/** The built-in runtime: task processes in their own namespaces, logs under dataDir/tasks. */
export function netnsRuntimeFor(o: WorkerOptions): Runtime {
  return new NetnsRuntime({ prefix: o.prefix, exec: o.exec, node: o.nodeName, logDir: join(o.dataDir, 'tasks') });
}

/** The agent's one Docker runtime (one Engine API client, one events stream). */
export function dockerRuntimeFor(o: WorkerOptions): Runtime {
  return new DockerRuntime({
    prefix: o.prefix, exec: o.exec, node: o.nodeName, image: o.dockerWhoamiImage ?? DEFAULT_WHOAMI_IMAGE,
    socketPath: o.dockerSocket ?? DEFAULT_DOCKER_SOCKET, log: o.log,
    ...(o.dockerSandboxImage ? { sandboxImage: o.dockerSandboxImage } : {}),
  });
}

export function taskSpecOf(a: Assignment): TaskSpec {
  if (a.attachments.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${a.task.id} has no network attachment`);
  const spec: TaskSpec = {
    id: a.task.id, name: a.task.name, env: a.task.env, ...programOf(a),
    ...(a.task.runtime === 'docker' && a.task.image !== 'whoami' ? { image: a.task.image } : {}),
    ...(a.task.healthcheck ? { healthcheck: a.task.healthcheck } : {}),
    ...(a.task.stopSignal ? { stopSignal: a.task.stopSignal } : {}),
  };
  if (a.task.limits) spec.limits = a.task.limits;
  if (a.task.container) spec.container = a.task.container;
  return spec;
}

/** The spec with extra mounts (the task's secret and config files, task-files.ts) after its own. */
export function withMounts(spec: TaskSpec, extra: readonly MountSpec[]): TaskSpec {
  if (extra.length === 0) return spec;
  return { ...spec, container: { ...spec.container, mounts: [...(spec.container?.mounts ?? []), ...extra] } };
}

export function runtimeAttachmentsOf(a: Assignment, overlay: Pick<OverlaySubsystem, 'prefix' | 'mtuOf'>): RuntimeAttachment[] {
  return a.attachments.map((att) => {
    const net = overlayNetworkOf(att);
    if (att.network.driver === 'macvlan') {
      // No sandbox: a sub-interface of the node's parent; MTU the parent's unless the network sets one.
      return { sandboxNs: '', bridge: '', macvlanParent: att.network.parent ?? '', ip: att.ip, prefix: att.prefix, gateway: net.gateway, mac: att.mac, mtu: att.network.mtu ?? 0 };
    }
    return {
      sandboxNs: sandboxName(overlay.prefix, net.id), bridge: BRIDGE_NAME,
      ip: att.ip, prefix: att.prefix, gateway: net.gateway, mac: att.mac, mtu: overlay.mtuOf(net),
      ...(att.ip6 !== undefined && att.prefix6 !== undefined ? { ip6: att.ip6, prefix6: att.prefix6 } : {}),
    };
  });
}

export type Probe = (pid: number, ports: readonly PortRef[], timeoutMs: number) => Promise<Readiness>;

/**
 * Waits until a started task serves its target ports (throws when it exited first; logs and
 * goes on after `timeoutMs`). No probe, no ports, no pid or timeout 0: returns at once.
 */
export async function untilServing(a: Assignment, info: TaskInfo, probe: Probe | undefined, timeoutMs: number, log: Logger): Promise<void> {
  const ports = a.ports.map((p) => ({ proto: p.proto, port: p.target }));
  if (!probe || timeoutMs <= 0 || ports.length === 0 || info.pid === null || info.pid <= 0) return;
  const r = await probe(info.pid, ports, timeoutMs);
  if (r === 'exited') throw new MeshError('MESHD_EXEC_FAILED', `task ${a.task.id} exited before serving ${ports.map((p) => `${p.port}/${p.proto}`).join(', ')}`);
  if (r === 'timeout') log.warn({ task: a.task.id, ports, ms: timeoutMs }, 'task does not serve its target ports yet: published as running anyway');
}

/**
 * Every task the runtimes hold at agent start, each with the runtime that holds it. `docker`:
 * the agent's Docker runtime when one may run here (undefined: not listed). A docker task's
 * namespace is named like a netns task's: it is Docker's, not an orphan of the netns runtime
 * (stopping it as one killed the sandbox, and the application with it).
 */
export async function heldByRuntimes(netns: Runtime, docker: Runtime | undefined, log: Logger): Promise<Array<{ rt: Runtime; info: TaskInfo }>> {
  const found: Array<{ rt: Runtime; info: TaskInfo }> = [];
  const inDocker = new Set<string>();
  if (docker) {
    try {
      for (const info of await docker.list()) {
        found.push({ rt: docker, info });
        inDocker.add(shortId(info.id));
      }
    } catch (e) {
      log.warn({ err: e }, 'cannot list docker tasks');
    }
  }
  for (const info of await netns.list()) if (!inDocker.has(shortId(info.id))) found.push({ rt: netns, info });
  return found;
}

type StartStep = 'files' | 'sandboxes' | 'runtime' | 'ready';

/** Laps of one start on the worker's monotonic clock; `done()` gives the figures (whole ms). */
export class StartLaps {
  private readonly t0: number;
  private last: number;
  private readonly laps: Record<StartStep, number> = { files: 0, sandboxes: 0, runtime: 0, ready: 0 };
  beforeAppMs = 0;
  constructor(private readonly now: () => number, private readonly assignedAt: number | undefined) {
    this.t0 = now();
    this.last = this.t0;
  }
  /** Ends step `step` now. */
  lap(step: StartStep): void {
    const t = this.now();
    this.laps[step] = t - this.last;
    this.last = t;
  }
  /** Wraps the runtime's beforeApp hook so its own time is counted apart. */
  timed<A extends unknown[]>(fn: ((...a: A) => Promise<void>) | undefined): ((...a: A) => Promise<void>) | undefined {
    if (!fn) return undefined;
    return async (...a: A) => {
      const t = this.now();
      try {
        await fn(...a);
      } finally {
        this.beforeAppMs += this.now() - t;
      }
    };
  }
  done(): StartTiming {
    const r = Math.round;
    const from = this.assignedAt ?? this.t0;
    return {
      queuedMs: this.assignedAt === undefined ? null : r(this.t0 - this.assignedAt),
      filesMs: r(this.laps.files), sandboxesMs: r(this.laps.sandboxes), runtimeMs: r(this.laps.runtime),
      beforeAppMs: r(this.beforeAppMs), readyMs: r(this.laps.ready), totalMs: r(this.now() - from),
    };
  }
}
