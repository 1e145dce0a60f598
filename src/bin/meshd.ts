#!/usr/bin/env node
/**
 * meshd — the daemon (agent; manager when asked). Composition root: parse and validate
 * config, build the agent with its subsystems, handle signals. Exit codes come from the
 * error table.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parseAgentConfig, type AgentConfigInput } from '../core/config.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { parseJsonBody } from '../adapters/api/json.js';
import { systemClock } from '../adapters/clock.js';
import { createLogger } from '../adapters/logger.js';
import { Agent } from '../agent/agent.js';
import { addSubsystems } from '../agent/subsystems.js';
import { VERSION } from '../version.js';

function fail(e: unknown): never {
  const err = toMeshError(e);
  process.stderr.write(`meshd: ${err.message}\n`);
  process.exit(err.exitCode);
}

async function main(): Promise<void> {
  const program = new Command('meshd')
    .description('meshd daemon: gossip, overlay, load balancing and DNS for one node')
    .version(VERSION)
    .option('-c, --config <file>', 'JSON config file')
    .option('--node-name <name>', 'node name (DNS label)')
    .option('--advertise-addr <ip>', 'underlay address other nodes reach us on')
    .option('--socket <path>', 'control API unix socket')
    .option('--data-dir <dir>', 'state directory')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .option('--gossip-preset <preset>', 'lan|wan|local')
    .option('--gossip-port <port>', 'gossip UDP/TCP port')
    .option('--seeds <list>', 'comma-separated IP:PORT of members to join')
    .exitOverride((err) => {
      if (err.exitCode === 0) process.exit(0);
      process.exit(2);
    });
  program.parse(process.argv);
  const o = program.opts<Record<string, string | undefined>>();

  let raw: Record<string, unknown> = {};
  if (o.config) {
    let text: string;
    try {
      text = readFileSync(o.config, 'utf8');
    } catch (e) {
      throw new MeshError('MESHD_BAD_CONFIG', `cannot read config ${o.config}: ${(e as Error).message}`);
    }
    const parsed = parseJsonBody(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new MeshError('MESHD_BAD_CONFIG', 'config must be a JSON object');
    raw = parsed as Record<string, unknown>;
  }
  const gossip = { ...((raw.gossip as Record<string, unknown>) ?? {}) };
  if (o.gossipPreset) gossip.preset = o.gossipPreset;
  if (o.gossipPort) gossip.bindPort = Number(o.gossipPort);
  if (o.seeds) gossip.seeds = o.seeds.split(',').filter(Boolean);
  const input: AgentConfigInput = {
    ...(raw as AgentConfigInput),
    ...(o.nodeName ? { nodeName: o.nodeName } : {}),
    ...(o.advertiseAddr ? { advertiseAddr: o.advertiseAddr } : {}),
    ...(o.socket ? { controlSocket: o.socket } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    ...(o.logLevel ? { logLevel: o.logLevel as AgentConfigInput['logLevel'] } : {}),
    gossip: gossip as AgentConfigInput['gossip'],
  };
  const config = parseAgentConfig(input);
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

main().catch(fail);
