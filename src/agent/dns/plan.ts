/**
 * Small pure helpers of the agent's DNS subsystem (table-tested in test/unit/agent/dns-plan.test.ts).
 */
import type { TaskInput } from '../../core/dns/registry.js';
import { QTYPE } from '../../core/dns/resolver.js';
import { slotFromTaskName } from '../../core/dns/srv.js';
import { MeshError } from '../../core/errors.js';
import type { EndpointRecord } from '../../core/endpoints.js';

const NAMES: Readonly<Record<string, number>> = QTYPE;

/** `A`, `aaaa`, `PTR`, `TYPE65`, `28` → the numeric QTYPE (1..65535); MESHD_BAD_ARGUMENT otherwise. */
export function parseQtype(raw: string): number {
  const s = raw.trim().toUpperCase();
  const named = NAMES[s];
  if (named !== undefined) return named;
  const m = /^(?:TYPE)?(\d{1,5})$/.exec(s);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 65535) return Number(m[1]);
  throw new MeshError('MESHD_BAD_ARGUMENT', `unknown query type ${JSON.stringify(raw)} (A, AAAA, PTR, SRV, MX, TXT, ANY... or a number)`);
}

/** The mnemonic of a QTYPE, or `TYPE<n>` (RFC 3597). */
export function qtypeName(t: number): string {
  for (const [k, v] of Object.entries(NAMES)) if (v === t) return k;
  return `TYPE${t}`;
}

/**
 * Network names a task is attached to, from its endpoint records, in a stable order (sorted by
 * network name: a sandbox on several networks looks names up in that order). Duplicates removed.
 */
export function taskNetworks(records: readonly EndpointRecord[], match: (r: EndpointRecord) => boolean): string[] {
  return [...new Set(records.filter(match).map((r) => r.networkName))].sort();
}

/** `IPV4:PORT` (validated by the config schema) → an upstream. */
export function parseUpstream(hostPort: string): { address: string; port: number } {
  const i = hostPort.lastIndexOf(':');
  const port = Number(hostPort.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new MeshError('MESHD_BAD_CONFIG', `dns upstream ${JSON.stringify(hostPort)}: IPV4:PORT expected`);
  return { address: hostPort.slice(0, i), port };
}

/**
 * The registry's task entry for an endpoint record: healthy while `running`; the slot read back from the
 * manager's task name (`<svc>.<slot>.<id>`, see core/dns/srv.ts); the ports the task listens on (targets)
 * for SRV answers.
 */
export function taskInputOf(rec: EndpointRecord, owner: string): TaskInput {
  const slot = slotFromTaskName(rec.taskName, rec.serviceName, rec.taskId);
  return {
    name: rec.taskName, network: rec.networkName, service: rec.serviceName, ip: rec.ip, healthy: rec.state === 'running', owner,
    ...(rec.ip6 !== undefined ? { ip6: rec.ip6 } : {}),
    ...(slot !== undefined ? { slot } : {}),
    ports: rec.ports.map((p) => ({ proto: p.proto, port: p.target })),
  };
}
