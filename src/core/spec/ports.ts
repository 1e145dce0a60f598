/**
 * Published ports the manager assigns (docker's `-p 8000`, Compose `ports: ["8000"]`): an
 * ingress port with a target and no published port gets one from swarm's dynamic range
 * 30000–32767, the lowest free one. The spec is stored with the port filled in, so every
 * node publishes the same port and `service inspect` reports it; an update that again leaves
 * it open keeps the port it had (same target and protocol), so clients keep working. Pure.
 */
import { MeshError } from '../errors.js';
import type { PortSpec } from './types.js';

export const DYNAMIC_PORT_MIN = 30000;
export const DYNAMIC_PORT_MAX = 32767;

const key = (port: number, proto: string): string => `${port}/${proto}`;

export function isDynamicPort(p: number): boolean {
  return p >= DYNAMIC_PORT_MIN && p <= DYNAMIC_PORT_MAX;
}

/**
 * `ports` with every open ingress port (published 0) given a published one. `used`: the
 * `PORT/proto` keys other services publish; `previous`: the service's current ports (an
 * update), whose assigned ports are kept for the same target/proto. Throws MESHD_NOT_READY
 * (kind Unavailable) when the range is exhausted for that protocol.
 */
export function assignPublishedPorts(ports: readonly PortSpec[], used: ReadonlySet<string>, previous: readonly PortSpec[] = []): PortSpec[] {
  const taken = new Set(used);
  for (const p of ports) if (p.mode === 'ingress' && p.published > 0) taken.add(key(p.published, p.proto));
  const reusable = previous.filter((p) => p.mode === 'ingress' && isDynamicPort(p.published));
  // First every open port that had a port keeps it, then the others get the lowest free ones
  // (one pass would hand a kept port to an earlier open one).
  const out = ports.map((p) => {
    if (p.mode !== 'ingress' || p.published > 0) return p;
    const i = reusable.findIndex((q) => q.target === p.target && q.proto === p.proto && !taken.has(key(q.published, q.proto)));
    if (i < 0) return p;
    const [q] = reusable.splice(i, 1);
    taken.add(key(q!.published, p.proto));
    return { ...p, published: q!.published };
  });
  const next: Record<string, number> = { tcp: DYNAMIC_PORT_MIN, udp: DYNAMIC_PORT_MIN };
  return out.map((p) => {
    if (p.mode !== 'ingress' || p.published > 0) return p;
    let n = next[p.proto]!;
    while (n <= DYNAMIC_PORT_MAX && taken.has(key(n, p.proto))) n++;
    if (n > DYNAMIC_PORT_MAX) {
      throw new MeshError('MESHD_NOT_READY', `no free published port for target ${p.target}/${p.proto} in ${DYNAMIC_PORT_MIN}-${DYNAMIC_PORT_MAX}: give one (-p PUBLISHED:${p.target})`, { field: 'ports' });
    }
    taken.add(key(n, p.proto));
    next[p.proto] = n + 1;
    return { ...p, published: n };
  });
}
