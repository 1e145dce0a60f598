/** Builders shared by the scheduler and orchestrator tests. */
import type { Node, Service, ServiceSpec, Task } from '../../../src/core/spec/types.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import type { ServiceSpecInput } from '../../../src/core/spec/validate.js';

export function node(id: string, over: Partial<Node> = {}): Node {
  return {
    id,
    hostname: over.hostname ?? id,
    role: 'worker',
    availability: 'active',
    state: 'ready',
    labels: {},
    resources: { cpuMilli: 4000, memoryBytes: 8 * 2 ** 30 },
    ...over,
  };
}

/** A service spec; `whoami:1` is not the built-in image, so it says `runtime: netns` (nodes here have only netns). */
export function spec(over: Partial<ServiceSpecInput> = {}): ServiceSpec {
  return parseServiceSpec({ name: 'web', image: 'whoami:1', runtime: 'netns', ...over });
}

export function service(id: string, over: Partial<ServiceSpecInput> = {}, version = 1): Service {
  return { id, version, spec: spec({ name: id, ...over }) };
}

export function idGen(prefix = 't'): () => string {
  let n = 0;
  return () => `${prefix}${++n}`;
}

/** Pending tasks of a service (no node). */
export function pendingTasks(svc: Service, n: number, ids = idGen(`${svc.id}-`)): Task[] {
  const ts = taskSpecOf(svc.spec);
  return Array.from({ length: n }, (_, i) => ({
    id: ids(),
    serviceId: svc.id,
    slot: i + 1,
    specVersion: svc.version,
    spec: ts,
    desiredState: 'running' as const,
    state: 'pending' as const,
    timestamps: { created: 0, updated: 0 },
  }));
}

export function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}
