/**
 * The running daemon: builds the agent with its subsystems from a validated config and handles
 * signals. meshd.ts imports this only to run (not for --help or --check-config), so those stay
 * fast and the bundle keeps the agent in its own chunk.
 */
import type { AgentConfig } from '../core/config.js';
import { systemClock } from '../adapters/clock.js';
import { createLogger } from '../adapters/logger.js';
import { Agent } from '../agent/agent.js';
import { addSubsystems } from '../agent/subsystems.js';

export async function runAgent(config: AgentConfig): Promise<void> {
  const log = createLogger({ level: config.logLevel, name: 'meshd', node: config.nodeName });
  const agent = new Agent(config, systemClock, log);
  addSubsystems(agent, config, systemClock, log);

  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ sig }, 'shutting down');
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    agent.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await agent.start();
}
