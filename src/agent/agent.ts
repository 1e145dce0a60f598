/**
 * The agent: composition root of one node's daemon. It owns every subsystem's lifetime
 * and wires edges (sockets, kernel, runtime) to pure cores. No module-level state:
 * everything lives on this object, created once per process by src/bin/meshd.ts.
 */
import type { Server } from 'node:http';
import { rmSync } from 'node:fs';
import type { AgentConfig } from '../core/config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../adapters/logger.js';
import { listenUnix, Router } from '../adapters/api/server.js';
import { VERSION } from '../version.js';

export type { Subsystem } from '../adapters/api/subsystem.js';
import type { Subsystem } from '../adapters/api/subsystem.js';

export class Agent {
  private server: Server | undefined;
  private readonly subsystems: Subsystem[] = [];
  private readonly startedAt: number;
  private ready = false;

  constructor(
    readonly config: AgentConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.startedAt = clock.now();
  }

  /**
   * Adds a subsystem. Its control API is its own `routes()`: each folder's routes.ts names only a narrow
   * host interface the subsystem implements, so the subsystem may import its routes without a cycle.
   */
  add(s: Subsystem): this {
    this.subsystems.push(s);
    return this;
  }

  info(): Record<string, unknown> {
    return {
      node: this.config.nodeName,
      version: VERSION,
      advertiseAddr: this.config.advertiseAddr,
      lab: this.config.lab ?? null,
      pid: process.pid,
      uptimeMs: Math.round(this.clock.now() - this.startedAt),
      ready: this.ready,
      subsystems: this.subsystems.map((s) => s.name),
      gossip: { preset: this.config.gossip.preset, bindPort: this.config.gossip.bindPort, seeds: this.config.gossip.seeds },
    };
  }

  async start(): Promise<void> {
    const router = new Router();
    router.add('GET', '/v1/info', () => ({ json: this.info() }));
    router.add('GET', '/v1/health', () => ({ json: { ok: true, ready: this.ready } }));
    for (const s of this.subsystems) s.routes?.(router);
    for (const s of this.subsystems) {
      this.log.info({ subsystem: s.name }, 'starting');
      await s.start();
    }
    this.server = await listenUnix(router, this.config.controlSocket, (e) => this.log.error({ err: e }, 'api internal error'));
    this.ready = true;
    this.log.info({ socket: this.config.controlSocket }, 'agent ready');
  }

  async stop(): Promise<void> {
    this.ready = false;
    for (const s of [...this.subsystems].reverse()) {
      try {
        await s.stop();
      } catch (e) {
        this.log.error({ err: e, subsystem: s.name }, 'stop failed');
      }
    }
    // close() waits for open connections: a client left on a streamed response must not hold the stop up.
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
    rmSync(this.config.controlSocket, { force: true });
    this.log.info('agent stopped');
  }
}
