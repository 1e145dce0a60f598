/**
 * Picks the dataplane: `/proc/net/ip_vs` exists (ip_vs loaded) → ipvs, else nftables; a configured
 * override wins. Note that /proc/net is the calling process's namespace, but ip_vs is a module:
 * loaded for one namespace means available in all.
 */
import { existsSync } from 'node:fs';
import { MeshError } from '../../core/errors.js';
import { realExec, type Exec } from '../exec.js';
import { IpvsDataplane } from './ipvs.js';
import { MemoryDataplane } from './memory.js';
import { NftablesDataplane } from './nftables.js';
import type { Dataplane, DataplaneOptions } from './types.js';

export type DataplaneChoice = 'auto' | 'nftables' | 'ipvs' | 'memory';

export function detectDataplaneKind(choice: DataplaneChoice = 'auto', exists: (p: string) => boolean = existsSync, procPath = '/proc/net/ip_vs'): 'nftables' | 'ipvs' | 'memory' {
  if (choice === 'nftables' || choice === 'ipvs' || choice === 'memory') return choice;
  if (choice !== 'auto') throw new MeshError('MESHD_BAD_CONFIG', `unknown dataplane ${JSON.stringify(choice)} (auto|nftables|ipvs|memory)`);
  return exists(procPath) ? 'ipvs' : 'nftables';
}

export function createDataplane(choice: DataplaneChoice = 'auto', deps: { exec?: Exec; exists?: (p: string) => boolean; options?: DataplaneOptions } = {}): Dataplane {
  const kind = detectDataplaneKind(choice, deps.exists);
  const exec = deps.exec ?? realExec;
  if (kind === 'ipvs') return new IpvsDataplane(exec, deps.options);
  if (kind === 'memory') return new MemoryDataplane();
  return new NftablesDataplane(exec, deps.options);
}
