/**
 * `GET /v1/tasks/:task/logs?follow=1&tail=N&timestamps=1`: a task's output through its runtime
 * (docker: the application container's log from the Engine API; netns: the task's log file),
 * streamed chunked as it comes. `netctl service logs` calls it on every node that runs a task
 * of the service and prefixes each line with the task's name; the agent sends the bytes as the
 * runtime gives them (no prefix, no reordering), so one route serves `netctl` and scripts alike.
 * A follow stream ends when the client goes away (the server destroys the source) or the
 * agent stops.
 */
import type { Readable } from 'node:stream';
import type { ApiRequest, ApiResult } from '../../adapters/api/server.js';
import type { LogOptions, Runtime } from '../../adapters/runtime/types.js';
import { MeshError } from '../../core/errors.js';

/** Largest `tail` accepted: larger asks are as good as "all" and only cost memory in the runtime. */
export const MAX_TAIL_LINES = 1_000_000;

/** A task the worker holds, with the runtime that runs it. */
export interface LogTarget {
  id: string;
  name: string;
  runtime: Runtime;
}

function flag(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null || v === '0' || v === 'false') return false;
  if (v === '' || v === '1' || v === 'true') return true;
  throw new MeshError('MESHD_BAD_ARGUMENT', `${key} must be 1 or 0, got ${JSON.stringify(v.slice(0, 32))}`);
}

/** follow / tail / timestamps from the query string; a bad tail (negative, NaN, fractional) is a 400. */
export function logOptionsFrom(q: URLSearchParams): LogOptions {
  const o: LogOptions = { follow: flag(q, 'follow'), timestamps: flag(q, 'timestamps') };
  const tail = q.get('tail');
  if (tail !== null && tail !== 'all') {
    if (!/^\d{1,7}$/.test(tail) || Number(tail) > MAX_TAIL_LINES) throw new MeshError('MESHD_BAD_ARGUMENT', `tail must be a whole number of lines from 0 to ${MAX_TAIL_LINES} or "all", got ${JSON.stringify(tail.slice(0, 32))}`);
    o.tail = Number(tail);
  }
  return o;
}

/** Open streams, so the agent's stop ends every follow at once instead of waiting for clients. */
export class TaskLogStreams {
  private readonly open = new Set<Readable>();

  async handle(r: ApiRequest, target: (ref: string) => LogTarget): Promise<ApiResult> {
    const opts = logOptionsFrom(r.query);
    const t = target(r.params.task!);
    if (!t.runtime.logs) throw new MeshError('MESHD_BAD_ARGUMENT', `the ${t.runtime.kind} runtime keeps no logs (task ${t.name})`);
    const stream = await t.runtime.logs(t.id, opts);
    this.open.add(stream);
    stream.once('close', () => this.open.delete(stream));
    return { stream };
  }

  closeAll(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}
