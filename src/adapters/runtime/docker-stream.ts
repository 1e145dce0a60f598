/**
 * Pure parsers of the Docker Engine API's streams, unit-tested without an engine:
 * - the multiplexed stdout/stderr framing of exec and logs when the container has no TTY
 *   (8-byte header: stream type, 3 zero bytes, big-endian payload length), fed in arbitrary
 *   chunks (a header or payload may be split across TCP reads);
 * - the events stream (one JSON object per line, possibly split across chunks) and the `die`
 *   events of meshd's containers;
 * - the reconnect back-off of the events stream.
 */

export interface Frame {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

/** Incremental demuxer of Docker's stdcopy framing. */
export class FrameDemuxer {
  private buf: Buffer = Buffer.alloc(0);

  /** Frames completed by this chunk (stdin frames, type 0, are reported as stdout). */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      out.push({ stream: this.buf[0] === 2 ? 'stderr' : 'stdout', data: this.buf.subarray(8, 8 + len) });
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }

  /** Bytes of an incomplete frame left over (0 when the stream ended cleanly). */
  get pending(): number {
    return this.buf.length;
  }
}

/** Incremental splitter of newline-delimited JSON; malformed lines are returned as errors, never dropped silently. */
export class JsonLines {
  private rest = '';

  push(chunk: string): Array<{ ok: true; value: unknown } | { ok: false; line: string }> {
    this.rest += chunk;
    const lines = this.rest.split('\n');
    this.rest = lines.pop() ?? '';
    const out: Array<{ ok: true; value: unknown } | { ok: false; line: string }> = [];
    for (const l of lines) {
      const t = l.trim();
      if (!t) continue;
      try {
        out.push({ ok: true, value: JSON.parse(t) as unknown });
      } catch {
        out.push({ ok: false, line: t.slice(0, 200) });
      }
    }
    return out;
  }
}

export interface DieEvent {
  /** Task id from the container's `meshd.task` label. */
  taskId: string;
  role: 'sandbox' | 'app';
  /** Process exit code (137 after SIGKILL), null when the event does not say. */
  exitCode: number | null;
  containerId: string;
  /** Event time, ns since the epoch (dedupe key with containerId after a reconnect replay). */
  timeNano: number;
}

/**
 * A `die` event of one of this runtime's containers (label meshd.prefix = prefix), else null.
 * Shape (API ≥ 1.22): {Type:'container', Action:'die', Actor:{ID, Attributes:{exitCode, labels…}}, time, timeNano}.
 */
export function parseDieEvent(ev: unknown, prefix: string): DieEvent | null {
  if (!ev || typeof ev !== 'object') return null;
  const e = ev as { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> }; time?: unknown; timeNano?: unknown };
  if (e.Type !== 'container' || e.Action !== 'die') return null;
  const attrs = e.Actor?.Attributes ?? {};
  if (attrs['meshd.prefix'] !== prefix) return null;
  const taskId = attrs['meshd.task'];
  if (typeof taskId !== 'string' || taskId === '') return null;
  const role = attrs['meshd.role'] === 'sandbox' ? 'sandbox' : 'app';
  const codeRaw = attrs.exitCode;
  const code = typeof codeRaw === 'string' && /^\d+$/.test(codeRaw) ? Number(codeRaw) : null;
  const timeNano = typeof e.timeNano === 'number' ? e.timeNano : typeof e.time === 'number' ? e.time * 1e9 : 0;
  return { taskId, role, exitCode: code, containerId: typeof e.Actor?.ID === 'string' ? e.Actor.ID : '', timeNano };
}

/** A `health_status` event of an application container: Docker's health check said so. */
export interface HealthEvent {
  taskId: string;
  status: 'starting' | 'healthy' | 'unhealthy';
  containerId: string;
  timeNano: number;
}

/**
 * A `health_status: healthy|unhealthy|starting` event of one of this runtime's application
 * containers, else null. Docker puts the status in the Action itself (`health_status: healthy`).
 */
export function parseHealthEvent(ev: unknown, prefix: string): HealthEvent | null {
  if (!ev || typeof ev !== 'object') return null;
  const e = ev as { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> }; time?: unknown; timeNano?: unknown };
  if (e.Type !== 'container' || typeof e.Action !== 'string') return null;
  const m = /^health_status: (starting|healthy|unhealthy)$/.exec(e.Action);
  if (!m) return null;
  const attrs = e.Actor?.Attributes ?? {};
  if (attrs['meshd.prefix'] !== prefix || attrs['meshd.role'] === 'sandbox') return null;
  const taskId = attrs['meshd.task'];
  if (typeof taskId !== 'string' || taskId === '') return null;
  const timeNano = typeof e.timeNano === 'number' ? e.timeNano : typeof e.time === 'number' ? e.time * 1e9 : 0;
  return { taskId, status: m[1] as HealthEvent['status'], containerId: typeof e.Actor?.ID === 'string' ? e.Actor.ID : '', timeNano };
}

/** Delay before the n-th consecutive reconnect of the events stream (n ≥ 1), ms: 100 → 5000. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.max(0, Math.min(attempt - 1, 16)));
}

/** Keeps the last `n` lines of a text (docker's `--tail` for runtimes that read a file). */
export function tailLines(text: string, n: number): string {
  if (n <= 0) return '';
  const lines = text.split('\n');
  const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  return lines.slice(-n).join('\n') + (trailing !== undefined ? '\n' : '');
}
