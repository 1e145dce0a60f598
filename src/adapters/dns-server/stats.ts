/**
 * Counters of the embedded DNS server, shaped for Prometheus: plain monotonic counters, one gauge
 * (`pending`) and a latency histogram (per-bucket counts — cumulate them for Prometheus — bucket upper bounds in µs, a last +Inf slot, `sumUs`, `count`).
 * Latency is measured from packet receipt to reply handed to the socket (local answers: handler time;
 * forwards: including the upstream round trip).
 */

export const LATENCY_BUCKETS_US: readonly number[] = Object.freeze([50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000]);

export const RCODE_NAMES: Readonly<Record<number, string>> = Object.freeze({ 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS' });

export interface DnsServerStats {
  queries: { udp: number; tcp: number };
  /** Replies sent, by rcode name (upstream rcodes we do not name appear as `RCODE<n>`). */
  answers: Record<string, number>;
  /** Packets answered with nothing, by reason (short-header, qr-set, tcp-*, send-error, closing...). */
  drops: Record<string, number>;
  /** Local answers by outcome. */
  local: { answer: number; nodata: number; nxdomain: number };
  /** Forwards: started, answered by upstream, SERVFAIL'd (timeout / overflow / no upstream). */
  forwards: { started: number; answered: number; failed: number; overflow: number; noUpstream: number };
  /** Queries waiting for an upstream right now (gauge). */
  pending: number;
  cache: { hits: number; misses: number; flushes: number; evictions: number; size: number };
  latency: { count: number; sumUs: number; bucketsUs: readonly number[]; counts: number[] };
}

/**
 * One UDP socket as ONE process serves it. Several processes read the same socket (workers.ts: the kernel
 * hands each datagram to one reader), so when a socket answers nothing these say which process took its
 * datagrams and what became of them (`read` − `answered` − `errors` = dropped by the handler, or still
 * waiting on an upstream). Plain counters, never reset while the socket is served.
 */
export interface UdpSocketCounters {
  /** The server's id for the socket: the same in the agent and in every worker (0: not assigned yet). */
  id: number;
  /** The path serving it in this process. */
  path: 'native' | 'js';
  /** This process's descriptors for it (the dgram socket's, then the native path's dup): `ss -p` shows these. */
  fds: number[];
  /** Datagrams this process read from it. */
  read: number;
  /** Replies handed to the kernel. */
  answered: number;
  /** Replies the kernel refused, truncated datagrams and socket errors. */
  errors: number;
}

export function emptySocketCounters(id = 0): UdpSocketCounters {
  return { id, path: 'js', fds: [], read: 0, answered: 0, errors: 0 };
}

/** What one process (the agent, or DNS worker `worker`) reports about the UDP sockets it serves. */
export interface ProcessSockets {
  readonly role: 'agent' | 'worker';
  /** Worker slot (workers only). */
  readonly worker?: number;
  readonly pid: number | undefined;
  readonly sockets: readonly UdpSocketCounters[];
}

export function emptyStats(): DnsServerStats {
  return {
    queries: { udp: 0, tcp: 0 },
    answers: {},
    drops: {},
    local: { answer: 0, nodata: 0, nxdomain: 0 },
    forwards: { started: 0, answered: 0, failed: 0, overflow: 0, noUpstream: 0 },
    pending: 0,
    cache: { hits: 0, misses: 0, flushes: 0, evictions: 0, size: 0 },
    latency: { count: 0, sumUs: 0, bucketsUs: LATENCY_BUCKETS_US, counts: LATENCY_BUCKETS_US.map(() => 0).concat([0]) },
  };
}

export function countAnswer(s: DnsServerStats, rcode: number): void {
  const name = RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
  s.answers[name] = (s.answers[name] ?? 0) + 1;
}

export function countDrop(s: DnsServerStats, reason: string): void {
  s.drops[reason] = (s.drops[reason] ?? 0) + 1;
}

/** Adds one latency sample (µs) to the histogram (last slot = +Inf). */
export function observeLatency(s: DnsServerStats, us: number): void {
  s.latency.count++;
  s.latency.sumUs += us;
  const b = LATENCY_BUCKETS_US;
  let i = 0;
  while (i < b.length && us > b[i]!) i++;
  s.latency.counts[i]!++;
}

/**
 * Sum of several processes' counters (the agent's own handler plus each DNS worker's last report):
 * counters and histogram counts add up; `pending` is the node-wide gauge (sum of each process's).
 * Histograms must share bucket bounds (they do: every process uses LATENCY_BUCKETS_US).
 */
export function sumStats(parts: readonly DnsServerStats[]): DnsServerStats {
  const s = emptyStats();
  const addRec = (into: Record<string, number>, from: Record<string, number>): void => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  for (const p of parts) {
    s.queries.udp += p.queries.udp;
    s.queries.tcp += p.queries.tcp;
    addRec(s.answers, p.answers);
    addRec(s.drops, p.drops);
    s.local.answer += p.local.answer;
    s.local.nodata += p.local.nodata;
    s.local.nxdomain += p.local.nxdomain ?? 0;
    for (const k of ['started', 'answered', 'failed', 'overflow', 'noUpstream'] as const) s.forwards[k] += p.forwards[k];
    s.pending += p.pending;
    for (const k of ['hits', 'misses', 'flushes', 'evictions', 'size'] as const) s.cache[k] += p.cache[k];
    s.latency.count += p.latency.count;
    s.latency.sumUs += p.latency.sumUs;
    for (let i = 0; i < s.latency.counts.length; i++) s.latency.counts[i]! += p.latency.counts[i] ?? 0;
  }
  return s;
}
