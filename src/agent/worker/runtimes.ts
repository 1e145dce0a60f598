/**
 * The worker's two runtimes: the netns runtime (always) and the node's one Docker runtime (one
 * Engine API client and events stream, made on first use). Each runtime's exit reports and health
 * events are subscribed once and unsubscribed at stop; tasks keep running across an agent restart.
 */
import type { Runtime } from '../../adapters/runtime/types.js';
import type { Assignment } from '../../core/assignments.js';
import type { HealthShell } from './health.js';
import { dockerRuntimeFor, netnsRuntimeFor } from './start.js';
import type { WorkerOptions } from './types.js';

export class WorkerRuntimes {
  readonly netns: Runtime;
  private dockerRt: Runtime | null = null;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly o: WorkerOptions, private readonly health: HealthShell, private readonly onExit: (taskId: string, code: number | null) => void) {
    this.netns = o.netnsRuntime ?? netnsRuntimeFor(o);
  }

  /** The agent's one Docker runtime (made and watched on first use). */
  docker(): Runtime {
    if (!this.dockerRt) {
      this.dockerRt = this.o.dockerRuntime ?? dockerRuntimeFor(this.o);
      this.watch(this.dockerRt);
    }
    return this.dockerRt;
  }

  of(a: Assignment): Runtime {
    return a.task.runtime === 'docker' ? this.docker() : this.netns;
  }

  /** A real runtime (not one a test injected): the worker then waits for the task to serve. */
  isReal(rt: Runtime): boolean {
    return (rt === this.netns && !this.o.netnsRuntime) || (rt === this.dockerRt && !this.o.dockerRuntime);
  }

  /** Subscribes the netns runtime's exits and health (once per start). */
  start(): void {
    if (this.unsubscribe.length === 0) this.watch(this.netns);
  }

  /** Unsubscribes everything and closes the Docker client. */
  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.dockerRt?.close?.();
    this.dockerRt = null;
  }

  private watch(rt: Runtime): void {
    const off = rt.onExit?.((taskId, code) => this.onExit(taskId, code));
    if (off) this.unsubscribe.push(off);
    const offHealth = this.health.watch(rt);
    if (offHealth) this.unsubscribe.push(offHealth);
  }
}
