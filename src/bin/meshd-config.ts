/**
 * meshd's configuration as the daemon sees it: the JSON file (`--config`, e.g.
 * /etc/meshd/meshd.json) with command-line flags over it, validated by the one schema
 * (src/core/config.ts). Light on purpose: `meshd --check-config` and `--help` load this and
 * not the agent (issue 16 §3).
 */
import { readFileSync } from 'node:fs';
import { defaultNodeDownGraceMs, parseAgentConfig, type AgentConfig, type AgentConfigInput } from '../core/config.js';
import { MeshError } from '../core/errors.js';
import { resolveGossipConfig } from '../core/gossip/config.js';
import { defaultDnsWorkers } from '../core/dns/snapshot.js';
import { parseJsonBody } from '../adapters/api/json.js';

/** The flags that override file values (commander's camelCase names). */
export interface ConfigFlags {
  config?: string | undefined;
  nodeName?: string | undefined;
  advertiseAddr?: string | undefined;
  socket?: string | undefined;
  dataDir?: string | undefined;
  logLevel?: string | undefined;
  gossipPreset?: string | undefined;
  gossipPort?: string | undefined;
  seeds?: string | undefined;
}

/** Reads and parses the config file: a JSON object, else MESHD_BAD_CONFIG naming the file. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MeshError('MESHD_BAD_CONFIG', `cannot read config ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseJsonBody(text);
  } catch (e) {
    throw new MeshError('MESHD_BAD_CONFIG', `config ${file}: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new MeshError('MESHD_BAD_CONFIG', `config ${file}: must be a JSON object`);
  return parsed as Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** File values, flags over them, validated. Throws MESHD_BAD_CONFIG whose message names the first bad key. */
export function loadConfig(o: ConfigFlags): AgentConfig {
  const raw = o.config ? readConfigFile(o.config) : {};
  const fileGossip = raw.gossip;
  const gossip: Record<string, unknown> = isObject(fileGossip) ? { ...fileGossip } : {};
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
    // A `gossip` that is not an object goes to the schema as it is, to be refused there by name.
    gossip: (isObject(fileGossip) || fileGossip === undefined ? gossip : fileGossip) as AgentConfigInput['gossip'],
  };
  const config = parseAgentConfig(input);
  // The gossip overrides are checked by the gossip config's own rules (names, ranges, relations).
  try {
    resolveGossipConfig(config.gossip.preset, config.gossip.overrides);
  } catch (e) {
    throw new MeshError('MESHD_BAD_CONFIG', `config gossip.overrides: ${(e as Error).message}`);
  }
  return config;
}

/**
 * What the daemon will run with: the validated config with every default filled in, plus the
 * values derived when a key is absent (gossip timers of the preset with the overrides applied,
 * DNS worker count for this machine, the manager's node-down grace for the preset).
 */
export function effectiveConfig(config: AgentConfig, cpuCount: number): Record<string, unknown> {
  return {
    ...config,
    dns: { ...config.dns, workers: config.dns.workers ?? defaultDnsWorkers(cpuCount) },
    manager: { ...config.manager, nodeDownGraceMs: config.manager.nodeDownGraceMs ?? defaultNodeDownGraceMs(config.gossip.preset) },
    gossip: { ...config.gossip, effective: resolveGossipConfig(config.gossip.preset, config.gossip.overrides) },
  };
}
