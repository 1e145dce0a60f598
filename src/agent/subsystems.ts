/**
 * Which subsystems an agent runs, in start order. The one place where the agent's
 * parts are chosen; each subsystem gets its edges injected here.
 */
import type { AgentConfig } from '../core/config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../adapters/logger.js';
import type { Agent } from './agent.js';
import { GossipSubsystem } from './gossip.js';

export interface Subsystems {
  gossip: GossipSubsystem;
}

export function addSubsystems(agent: Agent, config: AgentConfig, clock: Clock, log: Logger): Subsystems {
  const gossip = new GossipSubsystem(config, clock, log.child({ sub: 'gossip' }));
  agent.add(gossip);
  return { gossip };
}
