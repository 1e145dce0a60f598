/**
 * The cluster-wide view and settings on the manager API: `GET /v1/info` is classic Swarm's
 * `docker info` (strategy, filters, and per node its tasks and reserved / total CPUs and
 * memory, counted exactly as the scheduler counts them: every task not yet ended holds its
 * reservation), and `POST /v1/cluster/settings` changes the scheduling strategy (leader
 * only, like every write). A strategy change applies to the next placements; running tasks
 * are not moved (Swarm does not rebalance either).
 */
import { buildNodeInfos, FILTER_ORDER } from '../../core/scheduler/index.js';
import type { Task } from '../../core/spec/types.js';
import { parseBody } from '../model.js';
import type { ControlHost } from './host.js';
import type { ControlState } from './state.js';
import { settingsUpdateSchema, type ClusterSettings } from './settings.js';

/** One node in the info view (sizes in bytes, CPUs in milli-CPUs). */
export interface InfoNode {
  id: string;
  hostname: string;
  addr: string;
  role: string;
  state: string;
  availability: string;
  /** Tasks placed on the node and meant to run. */
  tasks: number;
  reserved: { cpuMilli: number; memoryBytes: number };
  total: { cpuMilli: number; memoryBytes: number };
  platform: { os: string; arch: string } | null;
  engine: { version: string; labels: Record<string, string> } | null;
}

export interface ClusterInfoView {
  strategy: ClusterSettings['strategy'];
  filters: readonly string[];
  /** Tasks placed anywhere and meant to run. */
  tasks: number;
  nodes: InfoNode[];
}

/** The info view of a control state (pure over it). */
export function clusterInfo(st: ControlState): ClusterInfoView {
  const nodes = [...st.nodes.values()];
  const infos = buildNodeInfos(nodes, [...st.tasks.values()] as Task[]);
  const list: InfoNode[] = nodes.sort((a, b) => a.hostname.localeCompare(b.hostname)).map((n) => {
    const ni = infos.get(n.id)!;
    return {
      id: n.id, hostname: n.hostname, addr: n.addr, role: n.role, state: n.state, availability: n.availability, tasks: ni.total,
      reserved: { cpuMilli: ni.cpuReserved, memoryBytes: ni.memReserved },
      total: { cpuMilli: n.resources.cpuMilli, memoryBytes: n.resources.memoryBytes },
      platform: n.platform ?? null,
      engine: n.engine ? { version: n.engine.version, labels: n.engine.labels ?? {} } : null,
    };
  });
  return { strategy: st.settings.strategy, filters: FILTER_ORDER, tasks: list.reduce((s, n) => s + n.tasks, 0), nodes: list };
}

export function registerClusterRoutes(cp: ControlHost): void {
  const m = cp.o.manager;
  m.route('GET', '/v1/info', 'manager', async () => ({ json: await cp.serialize(clusterInfo) }));
  m.route('GET', '/v1/cluster/settings', 'manager', async () => ({ json: await cp.serialize((st) => st.settings) }));
  m.route('POST', '/v1/cluster/settings', 'manager', async (req) => {
    const b = parseBody(settingsUpdateSchema, 'cluster update', req.body);
    const out = await cp.serialize((st) => {
      const next: ClusterSettings = { ...st.settings, ...(b.strategy !== undefined ? { strategy: b.strategy } : {}) };
      if (JSON.stringify(next) !== JSON.stringify(st.settings)) st.putSettings(next);
      return next;
    });
    cp.kick();
    return { json: out };
  });
}
