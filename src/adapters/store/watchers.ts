/**
 * In-process watcher registry for the single-process backends (memory, sqlite). Events of
 * one commit are delivered after the commit, in revision order, on a microtask (never in
 * the writer's stack, so a callback that writes cannot re-enter a transaction). A throwing
 * callback is reported through `onError`, never swallowed and never breaking other watchers.
 */
import type { Unwatch, WatchEvent } from './store.js';

type Watcher = { prefix: string; cb: (ev: WatchEvent) => void };

export class Watchers {
  private readonly list = new Set<Watcher>();
  constructor(private readonly onError: (e: unknown) => void) {}

  add(prefix: string, cb: (ev: WatchEvent) => void): Unwatch {
    const w = { prefix, cb };
    this.list.add(w);
    return () => {
      this.list.delete(w);
      return Promise.resolve();
    };
  }

  /** Schedules delivery of one commit's events. */
  emit(events: WatchEvent[]): void {
    if (events.length === 0 || this.list.size === 0) return;
    const targets = [...this.list];
    queueMicrotask(() => {
      for (const ev of events) {
        for (const w of targets) {
          if (!this.list.has(w) || !ev.key.startsWith(w.prefix)) continue;
          try {
            w.cb(ev);
          } catch (e) {
            this.onError(e);
          }
        }
      }
    });
  }

  clear(): void {
    this.list.clear();
  }
}
