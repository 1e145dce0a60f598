#!/usr/bin/env node
/**
 * meshd — the daemon (agent; manager when asked). Composition root: parse and validate
 * config, then load and run the agent (src/bin/meshd-agent.ts). `--help` and `--version` load
 * neither the config schema nor the agent, `--check-config` not the agent. Exit codes come from
 * the error table.
 */
import { cpus } from 'node:os';
import { Command } from 'commander';
import { toMeshError } from '../core/errors.js';
import { VERSION } from '../version.js';
import type { ConfigFlags } from './meshd-config.js';

function fail(e: unknown): never {
  const err = toMeshError(e);
  process.stderr.write(`meshd: ${err.message}\n`);
  process.exit(err.exitCode);
}

async function main(): Promise<void> {
  const program = new Command('meshd')
    .description('meshd daemon: gossip, overlay, load balancing and DNS for one node')
    .version(VERSION)
    .option('-c, --config <file>', 'JSON config file (e.g. /etc/meshd/meshd.json; every key: native-scripts/meshd.example.md)')
    .option('--check-config <file>', 'validate this config file (with the flags over it), print the effective values as JSON and exit')
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
  const o = program.opts<ConfigFlags & { checkConfig?: string }>();
  // The schema (zod) is loaded after the arguments parse: --help and --version never pay for it.
  const { effectiveConfig, loadConfig } = await import('./meshd-config.js');
  if (o.checkConfig) {
    const config = loadConfig({ ...o, config: o.checkConfig });
    process.stdout.write(JSON.stringify(effectiveConfig(config, cpus().length), null, 2) + '\n');
    return;
  }
  const config = loadConfig(o);
  const { runAgent } = await import('./meshd-agent.js');
  await runAgent(config);
}

main().catch(fail);
