/**
 * Per-packet logic of the embedded DNS server, independent of sockets (the fuzz tests drive it directly):
 * decode (strict) → map the source to its sandbox's networks → cached encoded answer, or resolve + encode +
 * cache, or forward upstream (bounded) → reply.
 *
 * TTL: default 5 s. Docker's embedded DNS answers with a fixed 600 s (moby#30029): any client that caches
 * (nginx `resolver`, JVM, Go's cgo-less resolver with a cache layer...) keeps a dead task's address for ten
 * minutes. Our answers come from a local in-memory table, so asking again is cheap; 5 s bounds staleness
 * to about the gossip propagation time while still absorbing bursts in caching clients. Configurable.
 */
import { performance } from 'node:perf_hooks';
import type { Rng } from '../../core/clock.js';
import { MeshError } from '../../core/errors.js';
import type { DnsRegistry } from '../../core/dns/registry.js';
import { resolve } from '../../core/dns/resolver.js';
import { encodeAnswer } from '../../core/dns/answer.js';
import { decodeQuery, encodeError, encodeQueryError, EDNS_DEFAULT_MAX, questionName, RCODE, responseLimit, type Query } from '../../core/dns/wire.js';
import { AnswerCache, ipPool, netKey, questionHash, questionHashRaw, shuffleInto, type NetKey } from './cache.js';
import { FastQuery } from './fastpath.js';
import type { Forwarder } from './forwarder.js';
import { countAnswer, countDrop, emptyStats, observeLatency, type DnsServerStats } from './stats.js';

export type Transport = 'udp' | 'tcp';

/**
 * Maps the asking source to the networks of its sandbox, in preference order (injected by the agent,
 * which knows every local sandbox's addresses). undefined → the source is not one of ours: REFUSED
 * (we must not become an open resolver for whoever reaches the port).
 */
export type NetworksOf = (address: string, port: number, transport: Transport) => readonly string[] | undefined;

export interface HandlerOptions {
  readonly registry: DnsRegistry;
  readonly forwarder: Forwarder;
  /** Default: every source is on `defaultNetworks`. */
  readonly networksOf?: NetworksOf;
  /** Networks used by the default `networksOf` (default ['default']). */
  readonly defaultNetworks?: readonly string[];
  /** TTL of our records in seconds (default 5; 0 allowed: clients must not cache). */
  readonly ttlSec?: number;
  /** Largest UDP reply we send and the size we advertise in EDNS (default 1232, range 512..4096). */
  readonly maxUdpPayload?: number;
  /** Bound on cached answers (default 10 000). */
  readonly cacheMaxEntries?: number;
  /** Randomness for shuffling load-spreading answers (default Math.random). */
  readonly rng?: Rng;
}

/** Mutable holder of the networks a socket's queries are resolved on (undefined: the handler's networksOf). */
export interface NetworksRef {
  networks: readonly string[] | undefined;
}

/** Where a reply goes; called at most once per packet (never for drops). */
export type Reply = (buf: Buffer) => void;

export class DnsHandler {
  readonly stats: DnsServerStats = emptyStats();
  readonly ttlSec: number;
  readonly maxUdpPayload: number;
  private readonly registry: DnsRegistry;
  private readonly forwarder: Forwarder;
  private readonly networksOf: NetworksOf;
  private readonly cache: AnswerCache;
  private readonly rng: Rng;
  private readonly netKeys = new WeakMap<readonly string[], NetKey>();
  /** The last networks array seen and its key (a strong reference to one array: bounded). */
  private lastNetworks: readonly string[] | undefined;
  private lastNetKey: NetKey | undefined;
  /** Scratch of the fast path (reused per packet: no allocation on a cache hit). */
  private readonly fq = new FastQuery();

  constructor(opts: HandlerOptions) {
    this.registry = opts.registry;
    this.forwarder = opts.forwarder;
    const defaults = Object.freeze([...(opts.defaultNetworks ?? ['default'])]);
    this.networksOf = opts.networksOf ?? (() => defaults);
    this.ttlSec = opts.ttlSec ?? 5;
    this.maxUdpPayload = opts.maxUdpPayload ?? EDNS_DEFAULT_MAX;
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 0 || this.ttlSec > 86_400) throw new MeshError('MESHD_BAD_CONFIG', `dns: ttlSec must be an integer in 0..86400, got ${this.ttlSec}`);
    if (!Number.isInteger(this.maxUdpPayload) || this.maxUdpPayload < 512 || this.maxUdpPayload > 4096) throw new MeshError('MESHD_BAD_CONFIG', `dns: maxUdpPayload must be in 512..4096, got ${this.maxUdpPayload}`);
    this.rng = opts.rng ?? Math.random;
    this.cache = new AnswerCache(opts.cacheMaxEntries ?? 10_000, this.rng);
  }

  /** Snapshot of the counters (cache and pending figures refreshed). */
  snapshot(): DnsServerStats {
    const s = this.stats;
    s.pending = this.forwarder.pending;
    s.cache = { ...this.cache.stats, size: this.cache.size };
    return structuredClone(s);
  }

  /**
   * Handles one DNS message (UDP datagram or TCP frame). Never throws for any input bytes. Returns false
   * when the packet is dropped (no reply will ever come), true when `reply` was or will be called once.
   * `sandboxNetworks`, when given, are the networks of the sandbox the packet arrived in (a socket bound
   * inside that sandbox: every source there is 127.0.0.1, so the address cannot tell sandboxes apart);
   * it replaces `networksOf`. Keep the same array object while the networks are unchanged (cache key).
   */
  handle(buf: Buffer, address: string, port: number, transport: Transport, reply: Reply, sandboxNetworks?: readonly string[]): boolean {
    const t0 = performance.now();
    const s = this.stats;
    if (transport === 'udp') s.queries.udp++;
    else s.queries.tcp++;
    // Fast path: a plain query whose answer is cached → copy, patch, send; no decode objects, no strings.
    const f = this.fq;
    if (f.parse(buf)) {
      const networks = sandboxNetworks ?? this.networksOf(address, port, transport);
      if (networks) {
        const limit = f.limit(transport === 'tcp', this.maxUdpPayload);
        const net = this.netKey(networks);
        const hit = this.cache.lookup(questionHashRaw(buf, f.nameEnd, f.questionEnd, limit, f.edns, net.hash), net, limit, buf, f.nameEnd, f.questionEnd, f.edns, f.rd, this.registry.generation);
        if (hit) {
          const rcode = this.cache.lastRcode;
          if (rcode === RCODE.NOERROR) s.local.answer++;
          else if (rcode === RCODE.NXDOMAIN) s.local.nxdomain++;
          this.send(reply, hit, rcode, t0);
          return true;
        }
      }
    }
    const d = decodeQuery(buf);
    if (!d.ok) {
      if (d.drop) {
        countDrop(s, d.reason);
        return false;
      }
      this.send(reply, encodeError(d.id, d.flags, d.rcode), d.rcode, t0);
      return true;
    }
    const q = d.query;
    const networks = sandboxNetworks ?? this.networksOf(address, port, transport);
    if (!networks) {
      this.send(reply, encodeQueryError(buf, q, RCODE.REFUSED, this.maxUdpPayload), RCODE.REFUSED, t0);
      return true;
    }
    const limit = responseLimit(q, transport === 'tcp', this.maxUdpPayload);
    const net = this.netKey(networks);
    const hash = questionHash(buf, q, limit, net);
    const gen = this.registry.generation;
    const hit = this.cache.get(hash, net, limit, buf, q, gen);
    if (hit) {
      const rcode = this.cache.lastRcode;
      if (rcode === RCODE.NOERROR) s.local.answer++;
      else if (rcode === RCODE.NXDOMAIN) s.local.nxdomain++;
      this.send(reply, hit, rcode, t0);
      return true;
    }
    const r = resolve(this.registry, networks, questionName(buf, q), q.qtype, q.qclass);
    if (r.kind !== 'forward') {
      const records = r.kind === 'answer' ? r.records : [];
      const rcode = r.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
      const additional = r.kind === 'answer' ? r.additional : undefined;
      const enc = encodeAnswer({ query: buf, q, rcode, records, ...(additional ? { additional } : {}), ttlSec: this.ttlSec, maxSize: limit, ednsUdpSize: this.maxUdpPayload });
      const pool = r.kind === 'answer' && r.shuffle ? ipPool(records.map((x) => x.data)) : undefined;
      // NXDOMAIN answers are cached like the others: keyed by the registry generation, so the first query
      // after a table change (a slot filled again) resolves afresh.
      this.cache.set(hash, net, limit, buf, q, gen, { buf: enc.buf, rcode, pool, aOffsets: enc.aOffsets });
      if (r.kind === 'answer') s.local.answer++;
      else if (r.kind === 'nxdomain') s.local.nxdomain++;
      else s.local.nodata++;
      // The first reply is shuffled exactly like every cached one (the cache keeps its own copy).
      if (pool) shuffleInto(enc.buf, pool, enc.aOffsets, this.rng);
      this.send(reply, enc.buf, rcode, t0);
      return true;
    }
    this.forward(buf, q, transport === 'tcp', (out, rcode) => this.send(reply, out, rcode, t0));
    return true;
  }

  private send(reply: Reply, out: Buffer, rcode: number, t0: number): void {
    countAnswer(this.stats, rcode);
    observeLatency(this.stats, Math.round((performance.now() - t0) * 1000));
    reply(out);
  }

  private forward(buf: Buffer, q: Query, tcp: boolean, send: (out: Buffer, rcode: number) => void): void {
    const s = this.stats;
    if (!this.forwarder.hasUpstreams) {
      s.forwards.noUpstream++;
      send(encodeQueryError(buf, q, RCODE.SERVFAIL, this.maxUdpPayload), RCODE.SERVFAIL);
      return;
    }
    const started = this.forwarder.forward(buf, q, tcp, (reply) => {
      if (reply) {
        s.forwards.answered++;
        send(reply, reply.length >= 4 ? (reply[3]! & 0x0f) : RCODE.SERVFAIL);
      } else {
        s.forwards.failed++;
        send(encodeQueryError(buf, q, RCODE.SERVFAIL, this.maxUdpPayload), RCODE.SERVFAIL);
      }
    });
    if (started) s.forwards.started++;
    else {
      s.forwards.overflow++;
      send(encodeQueryError(buf, q, RCODE.SERVFAIL, this.maxUdpPayload), RCODE.SERVFAIL);
    }
  }

  private netKey(networks: readonly string[]): NetKey {
    // Nearly every query comes with the same networks array as the one before (one sandbox, or the
    // defaults): skip the WeakMap probe then.
    if (networks === this.lastNetworks) return this.lastNetKey!;
    let k = this.netKeys.get(networks);
    if (k === undefined) {
      k = netKey(networks);
      this.netKeys.set(networks, k);
    }
    this.lastNetworks = networks;
    this.lastNetKey = k;
    return k;
  }
}
