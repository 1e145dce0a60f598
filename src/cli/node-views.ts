/**
 * Pure renderers of the node views in docker's shapes: `node inspect --pretty`, `node ps`
 * rows and classic Swarm's `docker info` cluster section (seed 003: `Strategy`, `Filters`,
 * `Nodes`, and per node `└ Reserved CPUs: 0 / 8`, `└ Reserved Memory: 0 B / 1.025 GiB`).
 */
import { ago } from './time-ago.js';

/** docker's go-units BytesSize: binary units, 4 significant digits (`1.025 GiB`; `sep` '' gives `1.025GiB`). */
export function bytesSize(n: number, sep = ' '): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${sep}${units[i]}`;
}

/** Milli-CPUs as docker shows CPUs (`0.5`, `2`). */
export function cpus(milli: number): string {
  return String(Math.round(milli) / 1000);
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** A node as `GET /nodes/:id` answers (the fields the views read). */
export interface NodeRecordView {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  state: string;
  addr: string;
  labels: Record<string, string>;
  resources: { cpuMilli: number; memoryBytes: number };
  platform?: { os: string; arch: string } | null;
  engine?: { version: string; apiVersion: string; labels?: Record<string, string> } | null;
  runtimes?: string[];
  managerAddr?: string | null;
  managerStatus?: string | null;
  createdAt?: number;
  certNotAfter?: string;
}

function labelLines(labels: Record<string, string> | undefined): string[] {
  const ks = Object.keys(labels ?? {}).sort();
  return ks.map((k) => ` - ${k}${labels![k] === '' ? '' : ` = ${labels![k]}`}`);
}

/** `node inspect --pretty` (docker's layout, meshd's fields: runtimes instead of plugins). */
export function nodePretty(n: NodeRecordView): string {
  const L: string[] = [];
  const kv = (k: string, v: string): void => void L.push(`${`${k}:`.padEnd(24)}${v}`);
  kv('ID', n.id);
  if (Object.keys(n.labels).length) {
    L.push('Labels:');
    L.push(...labelLines(n.labels));
  }
  kv('Hostname', n.hostname);
  if (n.createdAt !== undefined) kv('Joined at', new Date(n.createdAt).toISOString());
  L.push('Status:');
  kv(' State', cap(n.state));
  kv(' Availability', cap(n.availability));
  kv(' Address', n.addr || '-');
  if (n.role === 'manager') {
    L.push('Manager Status:');
    kv(' Address', n.managerAddr ?? '-');
    kv(' Raft Status', n.managerStatus === 'unreachable' ? 'Unreachable' : 'Reachable');
    kv(' Leader', n.managerStatus === 'leader' ? 'Yes' : 'No');
  }
  L.push('Platform:');
  kv(' Operating System', n.platform?.os ?? '-');
  kv(' Architecture', n.platform?.arch ?? '-');
  L.push('Resources:');
  kv(' CPUs', cpus(n.resources.cpuMilli));
  kv(' Memory', bytesSize(n.resources.memoryBytes, ''));
  kv('Runtimes', (n.runtimes ?? ['netns']).join(', '));
  kv('Engine Version', n.engine?.version ?? '-');
  if (n.engine?.labels && Object.keys(n.engine.labels).length) {
    L.push('Engine Labels:');
    L.push(...labelLines(n.engine.labels));
  }
  if (n.certNotAfter) {
    L.push('TLS Info:');
    kv(' Certificate expiry', n.certNotAfter);
  }
  return `${L.join('\n')}\n`;
}

/** A task as `GET /tasks` answers (the fields `node ps` shows). */
export interface TaskRow {
  id: string;
  name: string;
  image: string;
  node: string | null;
  desiredState: string;
  state: string;
  updatedAt: string;
  error: string | null;
  message: string | null;
}

export const NODE_PS_HEADERS = ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'];

/** `node ps` rows: docker's columns, states capitalized (`Running 5 seconds ago`). */
export function nodePsRows(list: readonly TaskRow[], now = Date.now()): string[][] {
  return list.map((t) => [
    // docker's NAME is the slot's (`web.1`), without the task id the manager's name ends with.
    t.id.slice(0, 12), t.name.endsWith(`.${t.id}`) ? t.name.slice(0, -t.id.length - 1) : t.name, t.image, t.node ?? '', cap(t.desiredState), `${cap(t.state)} ${ago(t.updatedAt, now)}`,
    t.error ?? (t.state === 'pending' ? t.message ?? '' : ''),
  ]);
}

/** `GET /v1/info` as the manager answers it (src/manager/control/cluster-routes.ts). */
export interface InfoView {
  strategy: string;
  filters: readonly string[];
  tasks: number;
  nodes: Array<{
    id: string; hostname: string; addr: string; role: string; state: string; availability: string; tasks: number;
    reserved: { cpuMilli: number; memoryBytes: number }; total: { cpuMilli: number; memoryBytes: number };
    platform: { os: string; arch: string } | null; engine: { version: string; labels: Record<string, string> } | null;
  }>;
}

/** classic Swarm's `docker info`, one block per node. */
export function infoText(v: InfoView): string {
  const L = [`Tasks: ${v.tasks}`, `Strategy: ${v.strategy}`, `Filters: ${v.filters.join(', ')}`, `Nodes: ${v.nodes.length}`];
  for (const n of v.nodes) {
    L.push(` ${n.hostname}: ${n.addr || '-'}`);
    L.push(`  └ ID: ${n.id}`);
    L.push(`  └ Status: ${cap(n.state)}`);
    L.push(`  └ Availability: ${cap(n.availability)}`);
    L.push(`  └ Role: ${n.role}`);
    L.push(`  └ Tasks: ${n.tasks}`);
    L.push(`  └ Reserved CPUs: ${cpus(n.reserved.cpuMilli)} / ${cpus(n.total.cpuMilli)}`);
    L.push(`  └ Reserved Memory: ${bytesSize(n.reserved.memoryBytes)} / ${bytesSize(n.total.memoryBytes)}`);
    if (n.platform) L.push(`  └ Platform: ${n.platform.os}/${n.platform.arch}`);
    const labels = Object.entries(n.engine?.labels ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => `${k}=${x}`);
    if (n.engine) L.push(`  └ Engine: ${n.engine.version}${labels.length ? ` (labels: ${labels.join(', ')})` : ''}`);
  }
  return `${L.join('\n')}\n`;
}
