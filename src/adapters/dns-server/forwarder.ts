/**
 * Forwards queries for names that are not ours to the host's upstream resolvers.
 *
 * - The query goes out byte for byte (EDNS and flags intact) under a fresh random ID; the reply comes back
 *   with the client's ID restored. Replies are accepted only from the upstream we asked, with a pending ID
 *   and the same question — stray or spoofed packets are dropped and counted.
 * - Hard bound on pending forwards (`maxPending`): beyond it `forward()` returns false at once and the
 *   server answers SERVFAIL, so a slow upstream can never pile up memory or starve local names (local
 *   answers never wait on this module).
 * - Per-query timeout (`timeoutMs`, total): split evenly over up to `maxAttempts` upstreams tried in turn
 *   (the next one only after the previous timed out); at the end the caller gets null → SERVFAIL, which
 *   a stub resolver sees before its own 5 s timeout.
 * - TCP queries are forwarded over TCP (one connection per query, RFC 7766 framing), so a client that
 *   retried over TCP after a truncated UDP reply gets the whole upstream answer.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import { readId, sameQuestion, writeId, type Query } from '../../core/dns/wire.js';

export interface Upstream {
  readonly address: string;
  readonly port: number;
}

export interface ForwarderOptions {
  readonly upstreams: readonly Upstream[];
  /** Total time budget per forwarded query, ms (default 3000: under glibc's 5 s so clients see SERVFAIL, not a timeout). */
  readonly timeoutMs?: number;
  /** Hard bound on queries waiting for an upstream, UDP and TCP together (default 256). */
  readonly maxPending?: number;
  /** Upstreams tried per query (default min(2, upstreams.length)). */
  readonly maxAttempts?: number;
}

export interface ForwarderStats {
  sent: number;
  answered: number;
  timeouts: number;
  /** Refused at once because `maxPending` was reached. */
  overflow: number;
  /** Upstream packets dropped: unknown ID, wrong source, other question, malformed. */
  stray: number;
  errors: number;
}

/** Outcome callback: the reply with the client's ID, or null (timeout / error → SERVFAIL). */
export type ForwardDone = (reply: Buffer | null, upstream: Upstream | undefined) => void;

interface Pending {
  readonly clientId: number;
  readonly query: Buffer;
  readonly q: Query;
  readonly done: ForwardDone;
  readonly tcp: boolean;
  attempt: number;
  upstreamIndex: number;
  id: number;
  timer: NodeJS.Timeout | undefined;
  cancel: (() => void) | undefined;
  /** Upstream of the current attempt (replies from anyone else are dropped). */
  upstream: Upstream | undefined;
}

export class Forwarder {
  readonly stats: ForwarderStats = { sent: 0, answered: 0, timeouts: 0, overflow: 0, stray: 0, errors: 0 };
  private readonly upstreams: readonly Upstream[];
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly maxAttempts: number;
  private readonly udp = new Map<number, Pending>();
  private readonly all = new Set<Pending>();
  private sock4: UdpSocket | undefined;
  private sock6: UdpSocket | undefined;
  private rr = 0;
  private closed = false;

  constructor(opts: ForwarderOptions) {
    this.upstreams = [...opts.upstreams];
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.maxPending = opts.maxPending ?? 256;
    this.maxAttempts = Math.max(1, Math.min(opts.maxAttempts ?? 2, this.upstreams.length));
  }

  get pending(): number {
    return this.all.size;
  }

  get hasUpstreams(): boolean {
    return this.upstreams.length > 0;
  }

  /**
   * Starts forwarding `query` (a validated query; `q` its decoded form). Returns false when it cannot
   * (no upstream, bound reached, closed): the caller answers SERVFAIL right away.
   */
  forward(query: Buffer, q: Query, tcp: boolean, done: ForwardDone): boolean {
    if (this.closed || this.upstreams.length === 0) return false;
    if (this.all.size >= this.maxPending) {
      this.stats.overflow++;
      return false;
    }
    const p: Pending = { clientId: q.id, query: Buffer.from(query), q, done, tcp, attempt: 0, upstreamIndex: this.rr++ % this.upstreams.length, id: 0, timer: undefined, cancel: undefined, upstream: undefined };
    this.all.add(p);
    this.attempt(p);
    return true;
  }

  private attempt(p: Pending): void {
    const up = this.upstreams[(p.upstreamIndex + p.attempt) % this.upstreams.length]!;
    const slice = Math.max(1, Math.floor(this.timeoutMs / this.maxAttempts));
    p.timer = setTimeout(() => this.onTimeout(p), slice);
    this.stats.sent++;
    p.upstream = up;
    if (p.tcp) this.sendTcp(p, up);
    else this.sendUdp(p, up);
  }

  private onTimeout(p: Pending): void {
    p.timer = undefined;
    p.cancel?.();
    p.cancel = undefined;
    this.stats.timeouts++;
    if (p.attempt + 1 < this.maxAttempts && !this.closed) {
      p.attempt++;
      this.attempt(p);
      return;
    }
    this.finish(p, null, undefined);
  }

  private finish(p: Pending, reply: Buffer | null, up: Upstream | undefined): void {
    if (!this.all.delete(p)) return;
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    p.cancel?.();
    p.cancel = undefined;
    if (reply) {
      writeId(reply, p.clientId);
      this.stats.answered++;
    }
    p.done(reply, up);
  }

  private socketFor(up: Upstream): UdpSocket {
    const v6 = isIPv6(up.address);
    const existing = v6 ? this.sock6 : this.sock4;
    if (existing) return existing;
    const s = createSocket({ type: v6 ? 'udp6' : 'udp4' });
    s.on('message', (msg, rinfo) => this.onUdpReply(msg, rinfo.address, rinfo.port));
    // Socket errors (ICMP unreachable surfaces as ECONNREFUSED on some stacks) are counted; the attempt times out.
    s.on('error', () => void this.stats.errors++);
    s.bind(0);
    s.unref();
    if (v6) this.sock6 = s;
    else this.sock4 = s;
    return s;
  }

  private sendUdp(p: Pending, up: Upstream): void {
    let id = randomInt(0x10000);
    for (let tries = 0; this.udp.has(id) && tries < 64; tries++) id = randomInt(0x10000);
    if (this.udp.has(id)) {
      this.finish(p, null, undefined);
      return;
    }
    p.id = id;
    this.udp.set(id, p);
    p.cancel = () => {
      if (this.udp.get(id) === p) this.udp.delete(id);
    };
    const out = Buffer.from(p.query);
    writeId(out, id);
    this.socketFor(up).send(out, up.port, up.address, (err) => {
      if (err) this.stats.errors++;
    });
  }

  private onUdpReply(msg: Buffer, address: string, port: number): void {
    if (msg.length < 12) {
      this.stats.stray++;
      return;
    }
    const p = this.udp.get(readId(msg));
    const up = p?.upstream;
    if (!p || !up || up.port !== port || normalizeAddr(up.address) !== normalizeAddr(address) || !sameQuestion(msg, p.query, p.q)) {
      this.stats.stray++;
      return;
    }
    this.finish(p, msg, up);
  }

  private sendTcp(p: Pending, up: Upstream): void {
    const sock = connect({ host: up.address, port: up.port });
    let chunks: Buffer[] = [];
    let got = 0;
    const fail = (): void => {
      sock.destroy();
    };
    p.cancel = fail;
    sock.on('error', () => {
      this.stats.errors++;
      sock.destroy();
    });
    sock.on('connect', () => {
      const frame = Buffer.allocUnsafe(p.query.length + 2);
      frame.writeUInt16BE(p.query.length, 0);
      p.query.copy(frame, 2);
      sock.write(frame);
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got < 2) return;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
      chunks = [all];
      const len = all.readUInt16BE(0);
      if (got < len + 2) return;
      const msg = Buffer.from(all.subarray(2, 2 + len));
      sock.destroy();
      if (msg.length < 12 || readId(msg) !== p.clientId || !sameQuestion(msg, p.query, p.q)) {
        this.stats.stray++;
        return; // the attempt's timer ends it
      }
      this.finish(p, msg, up);
    });
  }

  /** Fails every pending forward (callers get null) and closes the sockets. */
  close(): void {
    this.closed = true;
    for (const p of [...this.all]) this.finish(p, null, undefined);
    this.udp.clear();
    this.sock4?.close();
    this.sock6?.close();
    this.sock4 = this.sock6 = undefined;
  }
}

function normalizeAddr(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** `nameserver` lines of a resolv.conf (IPv4/IPv6; IPv6 zone ids dropped), in order, deduplicated. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)$/.exec(line);
    if (!m) continue;
    const addr = m[1]!.replace(/%.*$/, '');
    if (!/^[0-9a-fA-F:.]+$/.test(addr)) continue;
    if (!out.includes(addr)) out.push(addr);
  }
  return out;
}
