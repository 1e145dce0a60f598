/**
 * The Docker events stream of one runtime: one subscription (`GET /events`, filtered by the
 * engine to container `die` and `health_status` events carrying label meshd.prefix=<prefix>)
 * that tells the agent at once that an application container died or changed health — no
 * polling.
 *
 * The stream is a long-lived HTTP response; when it breaks (engine restart, socket error) it is
 * reopened with back-off (docker-stream.ts reconnectDelayMs) and `since` the last event seen, so
 * deaths during the gap are replayed; replayed duplicates are dropped by (container, timeNano).
 * close() ends the stream and clears the reconnect timer (no timer or socket left behind).
 */
import type Docker from 'dockerode';
import type { Logger } from '../logger.js';
import { JsonLines, parseDieEvent, parseHealthEvent, reconnectDelayMs, type DieEvent, type HealthEvent } from './docker-stream.js';

type Stream = NodeJS.ReadableStream & { destroy?: () => void };

const SEEN_MAX = 1024;

export class DockerEvents {
  private readonly listeners = new Set<(e: DieEvent) => void>();
  private readonly healthListeners = new Set<(e: HealthEvent) => void>();
  private stream: Stream | null = null;
  /** A connect is under way (a second subscriber must not open a second stream). */
  private connecting = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private attempts = 0;
  private lastTimeSec: number | null = null;
  private readonly seen = new Set<string>();
  /** Connections made (1 + reconnects) and malformed lines seen, for stats and tests. */
  connects = 0;
  malformed = 0;

  constructor(private readonly docker: Docker, private readonly prefix: string, private readonly log?: Logger) {}

  /** Adds a listener; the stream opens with the first one. Returns an unsubscribe. */
  subscribe(cb: (e: DieEvent) => void): () => void {
    this.listeners.add(cb);
    this.ensureConnected();
    return () => this.listeners.delete(cb);
  }

  /** Adds a listener of health_status events (same stream). Returns an unsubscribe. */
  subscribeHealth(cb: (e: HealthEvent) => void): () => void {
    this.healthListeners.add(cb);
    this.ensureConnected();
    return () => this.healthListeners.delete(cb);
  }

  /** Resolves once the stream is open (tests: a kill after this is seen). */
  async opened(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stream) {
      if (Date.now() > deadline) throw new Error(`docker events stream not open after ${timeoutMs} ms (${this.connects} connects)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const s = this.stream;
    this.stream = null;
    s?.removeAllListeners();
    s?.on('error', () => undefined);
    s?.destroy?.();
  }

  private ensureConnected(): void {
    if (!this.stream && !this.timer && !this.closed && !this.connecting) this.connect();
  }

  private connect(): void {
    this.connecting = true;
    const opts: Docker.GetEventsOptions = { filters: { type: ['container'], event: ['die', 'health_status'], label: [`meshd.prefix=${this.prefix}`] } };
    if (this.lastTimeSec !== null) opts.since = this.lastTimeSec;
    this.docker.getEvents(opts).then((s) => {
      this.connecting = false;
      this.opened_(s as unknown as Stream);
    }, (e: unknown) => {
      this.connecting = false;
      this.broken(e);
    });
  }

  private opened_(s: Stream): void {
    if (this.closed) {
      s.destroy?.();
      return;
    }
    this.stream = s;
    this.connects++;
    if (this.attempts > 0) this.log?.info({ attempts: this.attempts }, 'docker events stream reconnected');
    this.attempts = 0;
    const lines = new JsonLines();
    s.on('data', (chunk: Buffer | string) => {
      for (const r of lines.push(chunk.toString())) {
        if (!r.ok) {
          this.malformed++;
          this.log?.warn({ line: r.line }, 'docker events: malformed line');
          continue;
        }
        const e = parseDieEvent(r.value, this.prefix);
        if (e) this.deliver(e);
        const h = e ? null : parseHealthEvent(r.value, this.prefix);
        if (h) this.deliverHealth(h);
      }
    });
    s.once('error', (e: unknown) => this.broken(e));
    s.once('end', () => this.broken(new Error('stream ended')));
  }

  private deliver(e: DieEvent): void {
    const key = `${e.containerId}/${e.timeNano}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value as string);
    if (e.timeNano > 0) this.lastTimeSec = Math.floor(e.timeNano / 1e9);
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch (err) {
        this.log?.error({ err, task: e.taskId }, 'docker events: exit listener failed');
      }
    }
  }

  private deliverHealth(e: HealthEvent): void {
    const key = `${e.containerId}/${e.timeNano}/${e.status}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value as string);
    if (e.timeNano > 0) this.lastTimeSec = Math.floor(e.timeNano / 1e9);
    for (const cb of this.healthListeners) {
      try {
        cb(e);
      } catch (err) {
        this.log?.error({ err, task: e.taskId }, 'docker events: health listener failed');
      }
    }
  }

  private broken(e: unknown): void {
    const s = this.stream;
    this.stream = null;
    s?.removeAllListeners();
    s?.on('error', () => undefined);
    s?.destroy?.();
    if (this.closed || this.timer) return;
    // Replay from when the stream broke at the latest: nothing dies unseen in the gap.
    this.lastTimeSec ??= Math.floor(Date.now() / 1000) - 1;
    this.attempts++;
    const ms = reconnectDelayMs(this.attempts);
    // Warn on the first failure and then once a minute or so (the engine may be down for long).
    const level = this.attempts === 1 || this.attempts % 12 === 0 ? 'warn' : 'debug';
    this.log?.[level]({ err: e instanceof Error ? e.message : String(e), retryMs: ms, attempts: this.attempts }, 'docker events stream broken; reconnecting');
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.connect();
    }, ms);
  }
}
