/**
 * The pure parts of `netctl service logs`: which tasks a SERVICE|TASK argument names, the
 * docker-style prefix of each task (`web.1.abcd1234efgh@n2 | line`), the line splitter that
 * prefixes whole lines only (a chunk from an agent may end mid-line or mid-character, and two
 * tasks' streams interleave line by line, never inside a line), and `--tail` parsing.
 */
import { StringDecoder } from 'node:string_decoder';
import { MeshError } from '../core/errors.js';

/** A task as the manager's `GET /tasks` returns it (the fields logs needs). */
export interface LogTask {
  id: string;
  /** `service.slot.id` (or `service.nodeId.id` for a global service). */
  name: string;
  service?: string;
  node: string | null;
  desiredState: string;
  state: string;
  runtime?: string;
}

/** Short id length in the prefix, as docker's `service logs` truncates task ids. */
export const PREFIX_ID_LEN = 12;

/** `--tail N`: a whole number ≥ 0, or `all` (undefined = all). */
export function parseTail(v: string | undefined): number | undefined {
  if (v === undefined || v === 'all') return undefined;
  if (!/^\d{1,7}$/.test(v.trim())) throw new MeshError('MESHD_BAD_ARGUMENT', `--tail must be a whole number of lines (0 or more) or "all", got ${JSON.stringify(v)}`);
  return Number(v.trim());
}

/** `web.1.abcd1234efgh@n2`: the task's name with its id cut to 12 characters, and its node. */
export function taskLabel(t: Pick<LogTask, 'id' | 'name' | 'node'>): string {
  const base = t.name.endsWith(`.${t.id}`) ? `${t.name.slice(0, t.name.length - t.id.length)}${t.id.slice(0, PREFIX_ID_LEN)}` : t.name;
  return `${base}@${t.node ?? '?'}`;
}

/** Labels padded to the longest, so the `|` column lines up (docker's layout). */
export function paddedLabels(tasks: ReadonlyArray<Pick<LogTask, 'id' | 'name' | 'node'>>): Map<string, string> {
  const labels = tasks.map((t) => [t.id, taskLabel(t)] as const);
  const width = Math.max(0, ...labels.map(([, l]) => l.length));
  return new Map(labels.map(([id, l]) => [id, `${l.padEnd(width)} | `]));
}

/**
 * Splits one task's stream into whole lines, each prefixed. Bytes are decoded across chunk
 * boundaries (a multi-byte character split by a read stays whole); a last line without its
 * newline comes out at end().
 */
export class LinePrefixer {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  constructor(private readonly prefix: string) {}

  /** The complete lines of this chunk (and of what was held back), prefixed; '' when none is complete yet. */
  push(chunk: Buffer | string): string {
    this.rest += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const cut = this.rest.lastIndexOf('\n');
    if (cut < 0) return '';
    const whole = this.rest.slice(0, cut);
    this.rest = this.rest.slice(cut + 1);
    return whole.split('\n').map((l) => `${this.prefix}${l.endsWith('\r') ? l.slice(0, -1) : l}\n`).join('');
  }

  /** The unterminated last line, if any, prefixed and newline-terminated. */
  end(): string {
    this.rest += this.decoder.end();
    const r = this.rest;
    this.rest = '';
    return r === '' ? '' : `${this.prefix}${r}\n`;
  }
}

/** Tasks of a service whose logs `service logs SERVICE` shows: the current ones (desired running) that have a node. */
export function serviceLogTasks(tasks: readonly LogTask[]): LogTask[] {
  return tasks.filter((t) => t.desiredState === 'running' && t.node !== null);
}

/**
 * The task a TASK argument names among all tasks of the cluster: id, full name
 * (`web.1.<id>`), slot name (`web.1`: the current task of the slot) or unique id prefix
 * (≥ 4 characters). Null when none does.
 */
export function findLogTask(tasks: readonly LogTask[], key: string): LogTask | null {
  const exact = tasks.find((t) => t.id === key || t.name === key);
  if (exact) return exact;
  const slot = tasks.filter((t) => t.name === `${key}.${t.id}`);
  const current = slot.filter((t) => t.desiredState === 'running');
  if (current.length === 1) return current[0]!;
  if (slot.length > 0) {
    // Only older tasks of that slot: the newest (the manager lists a slot newest first).
    if (current.length === 0) return slot[0]!;
    throw new MeshError('MESHD_BAD_ARGUMENT', `task name ${key} is ambiguous: ${current.map((t) => t.id).join(', ')}`);
  }
  const pre = key.length >= 4 ? tasks.filter((t) => t.id.startsWith(key)) : [];
  if (pre.length > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `task prefix ${key} is ambiguous: ${pre.map((t) => t.id.slice(0, PREFIX_ID_LEN)).join(', ')}`);
  return pre[0] ?? null;
}

/** Query string of the agent's logs route for one task. */
export function logsQuery(o: { follow: boolean; tail?: number; timestamps: boolean }): string {
  const q = new URLSearchParams();
  if (o.follow) q.set('follow', '1');
  if (o.tail !== undefined) q.set('tail', String(o.tail));
  if (o.timestamps) q.set('timestamps', '1');
  const s = q.toString();
  return s ? `?${s}` : '';
}
