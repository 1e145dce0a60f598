/**
 * Which subsystems an agent runs, in start order. The one place where the agent's
 * parts are chosen; each subsystem gets its edges injected here.
 */
import type { AgentConfig } from '../core/config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../adapters/logger.js';
import type { Agent } from './agent.js';
import { GossipSubsystem } from './gossip.js';
import { KeyStore } from './keys.js';

export interface Subsystems {
  gossip: GossipSubsystem;
}

export function addSubsystems(agent: Agent, config: AgentConfig, clock: Clock, log: Logger): Subsystems {
  const keys = new KeyStore(config.dataDir, config.gossip.clusterName, config.gossip.keyFile);
  if (!keys.keyring) log.warn('gossip is NOT encrypted: set gossip.keyFile (netctl lab does this for you)');
  const gossip = new GossipSubsystem(config, clock, log.child({ sub: 'gossip' }), keys.cipher());
  agent.add({ name: 'keys', start: async () => undefined, stop: async () => undefined, routes: (r) => keys.routes(r) });
  agent.add(gossip);
  return { gossip };
}
