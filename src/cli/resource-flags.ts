/**
 * docker's resource flags on `service create` / `service update`: `--reserve-cpu`,
 * `--reserve-memory` (the scheduler's reservations: a task goes only where that much is still
 * unreserved) and `--limit-cpu`, `--limit-memory` (enforced by the runtime; the docker
 * runtime sets HostConfig NanoCpus/Memory, the netns runtime refuses them with
 * MESHD_UNSUPPORTED). Values in docker's spelling: CPUs as a decimal (`0.5`), memory with
 * binary units (`64m`, `1g`, `512MiB`, docker's RAMInBytes). `0` removes a setting.
 */
import type { Command } from 'commander';
import { parseBytes, parseCpus } from '../core/spec/units.js';

export { parseBytes, parseCpus };

export interface ResourceFlags {
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
}

export interface ResourcesInput {
  cpuMilli: number;
  memoryBytes: number;
}

export function addResourceOptions(c: Command): Command {
  return c
    .option('--reserve-cpu <cpus>', 'reserve CPUs per task, e.g. 0.5 (the scheduler places a task only where this much is unreserved)')
    .option('--reserve-memory <bytes>', 'reserve memory per task, e.g. 64m, 1g')
    .option('--limit-cpu <cpus>', 'limit CPUs per task, e.g. 0.5 (docker runtime; refused on netns)')
    .option('--limit-memory <bytes>', 'limit memory per task, e.g. 64m (docker runtime; refused on netns)');
}

/**
 * The spec's `resources` (reservations) and `limits` after the flags, from `base` (an update
 * keeps what a flag does not name). Limits that end up all zero are left out.
 */
export function resourcesFrom(o: ResourceFlags, base: { resources?: ResourcesInput; limits?: ResourcesInput } = {}): { resources: ResourcesInput; limits?: ResourcesInput } {
  const resources = { cpuMilli: base.resources?.cpuMilli ?? 0, memoryBytes: base.resources?.memoryBytes ?? 0 };
  const limits = { cpuMilli: base.limits?.cpuMilli ?? 0, memoryBytes: base.limits?.memoryBytes ?? 0 };
  if (o.reserveCpu !== undefined) resources.cpuMilli = parseCpus(o.reserveCpu, '--reserve-cpu');
  if (o.reserveMemory !== undefined) resources.memoryBytes = parseBytes(o.reserveMemory, '--reserve-memory');
  if (o.limitCpu !== undefined) limits.cpuMilli = parseCpus(o.limitCpu, '--limit-cpu');
  if (o.limitMemory !== undefined) limits.memoryBytes = parseBytes(o.limitMemory, '--limit-memory');
  return { resources, ...(limits.cpuMilli > 0 || limits.memoryBytes > 0 ? { limits } : {}) };
}
