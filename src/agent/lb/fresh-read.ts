/**
 * One kernel read-back at a time, shared by every caller that asked while it was queued: the LB
 * status (`GET /v1/lb/status`, `netctl debug lb`) and the periodic drift check both read every
 * namespace back (two execs each). Under a slow host a read can outlast a client's timeout; each
 * abandoned request still ran to completion while the next one started, so reads piled up, each
 * slower than the last, and the agent stopped answering status at all (the IPVS VM mesh test, issue
 * 14: "agent at n1.sock did not answer in time" for 120 s). With this, a caller gets the result of
 * a read that STARTED after it called (never an older one: the drift check's in-flight-apply
 * snapshot is taken before it asks), at most one read runs and at most one waits.
 */
export class FreshRead<T> {
  private running: Promise<T> | null = null;
  private queued: Promise<T> | null = null;
  /** Reads started so far (for tests and diagnostics). */
  started = 0;

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.running) return this.queued ?? this.start(); // a queued read starts after this call: fresh
    // The running read began before this call: wait for the next one, shared with later callers.
    this.queued ??= this.running.then(() => undefined, () => undefined).then(() => {
      this.queued = null;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<T> {
    this.started++;
    const p = this.read().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }
}
