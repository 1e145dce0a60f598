/**
 * Prometheus metrics (prom-client) on the agent's control API: `GET /metrics`. Values are
 * read from the subsystems at scrape time (collect callbacks), so nothing is double-counted
 * and no subsystem depends on prom-client.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Router } from '../adapters/api/server.js';
import type { GossipNode } from '../core/gossip/index.js';
import type { DnsServerStats } from '../adapters/dns-server/stats.js';
import type { Subsystem } from './agent.js';
import type { LbStats } from './lb/lb.js';
import type { ProxyStats } from '../adapters/proxy-listener.js';
import type { ConvergenceHistogram } from '../core/convergence/index.js';

export interface MetricSources {
  gossip?: () => GossipNode;
  dns?: () => DnsServerStats | undefined;
  /** Load-balancer transactions and what is programmed (`LbSubsystem.stats()`). */
  lb?: () => LbStats | undefined;
  /** The PROXY protocol listeners of published ports (src/agent/lb/proxy-ports.ts). */
  proxy?: () => ProxyStats | undefined;
  /** Confirmed drains of this node's stopping tasks (`DrainWaiter.counters`). */
  drain?: () => { started: number; acked: number; timedOut: number; aborted: number } | undefined;
  /** Publication → last node holding a change (src/agent/drain/convergence.ts). */
  convergence?: () => ConvergenceHistogram | undefined;
}

/** A counter whose value is owned elsewhere (monotonic in its subsystem): copied at collect time. */
function mirror(c: Counter<string>, labels: Record<string, string>, value: number): void {
  c.remove(labels);
  c.inc(labels, Math.max(0, value));
}

export class MetricsSubsystem implements Subsystem {
  readonly name = 'metrics';
  readonly registry = new Registry();

  constructor(private readonly node: string, private readonly src: MetricSources) {
    const r = this.registry;
    r.setDefaultLabels({ node });
    new Counter({
      name: 'meshd_gossip_packets_total', help: 'Gossip UDP packets, by direction', labelNames: ['direction'], registers: [r],
      collect() {
        const m = src.gossip?.().metrics();
        if (!m) return;
        mirror(this, { direction: 'in' }, m.packetsIn);
        mirror(this, { direction: 'out' }, m.packetsOut);
      },
    });
    new Counter({
      name: 'meshd_gossip_bytes_total', help: 'Gossip UDP payload bytes, by direction', labelNames: ['direction'], registers: [r],
      collect() {
        const m = src.gossip?.().metrics();
        if (!m) return;
        mirror(this, { direction: 'in' }, m.bytesIn);
        mirror(this, { direction: 'out' }, m.bytesOut);
      },
    });
    new Counter({
      name: 'meshd_gossip_drops_total', help: 'Gossip input dropped (malformed, decrypt, oversized...), by reason', labelNames: ['reason'], registers: [r],
      collect() {
        const m = src.gossip?.().metrics();
        if (!m) return;
        for (const [reason, v] of Object.entries(m.drops)) mirror(this, { reason }, v);
      },
    });
    new Counter({
      name: 'meshd_gossip_probe_failures_total', help: 'Probes that got no ack', registers: [r],
      collect() {
        const m = src.gossip?.().metrics();
        if (m) mirror(this, {}, m.probeFailures);
      },
    });
    new Gauge({
      name: 'meshd_gossip_members', help: 'Members known, by state', labelNames: ['state'], registers: [r],
      collect() {
        const g = src.gossip?.();
        if (!g) return;
        const by: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
        for (const m of g.members()) by[m.state] = (by[m.state] ?? 0) + 1;
        for (const [state, v] of Object.entries(by)) this.set({ state }, v);
      },
    });
    new Gauge({
      name: 'meshd_gossip_health_score', help: 'Lifeguard local health score (0 = healthy)', registers: [r],
      collect() {
        const g = src.gossip?.();
        if (g) this.set(g.health());
      },
    });
    new Gauge({
      name: 'meshd_table_entries', help: 'Replicated table entries held, by network', labelNames: ['network'], registers: [r],
      collect() {
        const g = src.gossip?.();
        if (!g) return;
        this.reset();
        for (const net of g.networks()) this.set({ network: net }, g.tableEntries(net).length);
      },
    });
    new Counter({
      name: 'meshd_dns_queries_total', help: 'DNS queries, by transport', labelNames: ['transport'], registers: [r],
      collect() {
        const s = src.dns?.();
        if (!s) return;
        mirror(this, { transport: 'udp' }, s.queries.udp);
        mirror(this, { transport: 'tcp' }, s.queries.tcp);
      },
    });
    new Counter({
      name: 'meshd_dns_responses_total', help: 'DNS responses, by rcode', labelNames: ['rcode'], registers: [r],
      collect() {
        const s = src.dns?.();
        if (!s) return;
        for (const [rcode, v] of Object.entries(s.answers)) mirror(this, { rcode }, v);
      },
    });
    new Counter({
      name: 'meshd_dns_drops_total', help: 'DNS packets dropped without an answer, by reason', labelNames: ['reason'], registers: [r],
      collect() {
        const s = src.dns?.();
        if (!s) return;
        for (const [reason, v] of Object.entries(s.drops)) mirror(this, { reason }, v);
      },
    });
    new Gauge({
      name: 'meshd_dns_forwards_pending', help: 'Queries waiting for an upstream resolver', registers: [r],
      collect() {
        const s = src.dns?.();
        if (s) this.set(s.pending);
      },
    });
    new Counter({
      name: 'meshd_lb_syncs_total', help: 'Load-balancer dataplane transactions, by result and mode (full resync or incremental)', labelNames: ['result', 'mode'], registers: [r],
      collect() {
        const s = src.lb?.();
        if (!s) return;
        // `syncs` counts applied transactions (full ones included); failures are counted apart.
        mirror(this, { result: 'ok', mode: 'full' }, s.fullResyncs);
        mirror(this, { result: 'ok', mode: 'incremental' }, s.syncs - s.fullResyncs);
        mirror(this, { result: 'failed', mode: 'any' }, s.failures);
      },
    });
    new Counter({
      name: 'meshd_lb_sync_seconds_total', help: 'Wall time spent in load-balancer transactions', registers: [r],
      collect() {
        const s = src.lb?.();
        if (!s) return;
        this.reset();
        this.inc(Math.max(0, s.totalSyncMs / 1000));
      },
    });
    new Gauge({
      name: 'meshd_lb_last_sync_seconds', help: 'Duration of the last load-balancer transaction', registers: [r],
      collect() {
        const s = src.lb?.();
        if (s) this.set(s.lastSyncMs / 1000);
      },
    });
    new Counter({
      name: 'meshd_proxy_connections_total', help: 'Connections to PROXY-protocol published ports: accepted, rejected over lb.proxyProtocol.maxConnections, failed by reason', labelNames: ['result'], registers: [r],
      collect() {
        const s = src.proxy?.();
        if (!s) return;
        mirror(this, { result: 'accepted' }, s.accepted);
        mirror(this, { result: 'rejected' }, s.rejected);
        for (const [why, n] of Object.entries(s.errors)) mirror(this, { result: `error_${why}` }, n);
      },
    });
    new Gauge({
      name: 'meshd_proxy_active_connections', help: 'Connections open through the PROXY-protocol listeners', registers: [r],
      collect() {
        const s = src.proxy?.();
        if (s) this.set(s.active);
      },
    });
    new Counter({
      name: 'meshd_proxy_bytes_total', help: 'Payload bytes through the PROXY-protocol listeners (in: client to task, out: task to client), counted when a connection ends', labelNames: ['direction'], registers: [r],
      collect() {
        const s = src.proxy?.();
        if (!s) return;
        mirror(this, { direction: 'in' }, s.bytesIn);
        mirror(this, { direction: 'out' }, s.bytesOut);
      },
    });
    new Counter({
      name: 'meshd_drain_total', help: 'Drains of stopping tasks by outcome: acked by every live member, timed out (stopped anyway), aborted', labelNames: ['outcome'], registers: [r],
      collect() {
        const s = src.drain?.();
        if (!s) return;
        mirror(this, { outcome: 'acked' }, s.acked);
        mirror(this, { outcome: 'timeout' }, s.timedOut);
        mirror(this, { outcome: 'aborted' }, s.aborted);
      },
    });
    new Gauge({
      name: 'meshd_lb_programmed', help: 'What the dataplane holds: namespaces, frontends (VIP:port and published ports) and active backends', labelNames: ['kind', 'dataplane'], registers: [r],
      collect() {
        const s = src.lb?.();
        if (!s) return;
        this.reset();
        this.set({ kind: 'namespaces', dataplane: s.backend }, s.namespaces);
        this.set({ kind: 'frontends', dataplane: s.backend }, s.services);
        this.set({ kind: 'backends', dataplane: s.backend }, s.backends);
      },
    });
  }

  /** The DNS server keeps its own bucketed histogram; render it in Prometheus form. */
  private dnsHistogramText(s: DnsServerStats | undefined, node: string): string {
    if (!s) return '';
    const lines = ['# HELP meshd_dns_answer_latency_seconds DNS answer latency measured by the server', '# TYPE meshd_dns_answer_latency_seconds histogram'];
    let cum = 0;
    s.latency.bucketsUs.forEach((b, i) => {
      cum += s.latency.counts[i] ?? 0;
      lines.push(`meshd_dns_answer_latency_seconds_bucket{le="${b / 1e6}",node="${node}"} ${cum}`);
    });
    cum += s.latency.counts[s.latency.bucketsUs.length] ?? 0;
    lines.push(`meshd_dns_answer_latency_seconds_bucket{le="+Inf",node="${node}"} ${cum}`);
    lines.push(`meshd_dns_answer_latency_seconds_sum{node="${node}"} ${s.latency.sumUs / 1e6}`);
    lines.push(`meshd_dns_answer_latency_seconds_count{node="${node}"} ${s.latency.count}`);
    return lines.join('\n') + '\n';
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  routes(router: Router): void {
    router.add('GET', '/metrics', async () => ({
      text: (await this.registry.metrics()) + this.dnsHistogramText(this.src.dns?.(), this.node)
        + (this.src.convergence?.()?.render('meshd_convergence_seconds', `node="${this.node}"`) ?? ''),
      contentType: this.registry.contentType,
    }));
  }
}
