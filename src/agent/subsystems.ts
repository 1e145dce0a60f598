/**
 * Which subsystems an agent runs, in start order. The one place where the agent's
 * parts are chosen; each subsystem gets its edges injected here.
 */
import type { AgentConfig } from '../core/config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../adapters/logger.js';
import type { Agent } from './agent.js';

export function addSubsystems(_agent: Agent, _config: AgentConfig, _clock: Clock, _log: Logger): void {
  // Subsystems (gossip, overlay, lb, dns) register here as they land.
}
