/**
 * Idle timeouts, so long-lived idle connections through a VIP are not silently broken.
 *
 * moby#31208: IPVS forgets an idle TCP connection after 900 s by default, while Linux only starts
 * TCP keepalives after 7200 s (net.ipv4.tcp_keepalive_time) — so an idle database connection through
 * a swarm VIP dies without either side knowing. The entry must outlive the keepalive schedule:
 * 7200 s + 9 probes × 75 s = 7875 s. We default to one day for established TCP, for both IPVS
 * (`ipvsadm --set`) and conntrack (NAT bindings of the nftables backend live in conntrack; the
 * kernel default there is 5 days). `effectiveTimeouts` never goes below the keepalive schedule, so
 * a misconfiguration cannot reintroduce the bug.
 */
export interface IdleTimeouts {
  /** Established TCP, seconds. */
  tcpEstablishedSec: number;
  /** TCP after FIN, seconds. */
  tcpFinSec: number;
  /** UDP, seconds. */
  udpSec: number;
}

/** Linux default keepalive time + probes × interval (7200 + 9 × 75). */
export const KEEPALIVE_HORIZON_SEC = 7875;

export const DEFAULT_IDLE_TIMEOUTS: IdleTimeouts = Object.freeze({ tcpEstablishedSec: 86_400, tcpFinSec: 120, udpSec: 300 });

/** Clamps to values that keep keepalive-only connections alive; all values integer seconds ≥ 1. */
export function effectiveTimeouts(t: IdleTimeouts): IdleTimeouts {
  const i = (x: number): number => Math.max(1, Math.round(Number.isFinite(x) ? x : 1));
  return { tcpEstablishedSec: Math.max(KEEPALIVE_HORIZON_SEC, i(t.tcpEstablishedSec)), tcpFinSec: i(t.tcpFinSec), udpSec: i(t.udpSec) };
}

/** `ipvsadm --set TCP TCPFIN UDP`. */
export function ipvsTimeoutArgs(t: IdleTimeouts): string[] {
  const e = effectiveTimeouts(t);
  return ['--set', String(e.tcpEstablishedSec), String(e.tcpFinSec), String(e.udpSec)];
}

/** Per-netns conntrack sysctls (`sysctl -w k=v ...`) for the nftables backend. */
export function conntrackSysctls(t: IdleTimeouts): string[] {
  const e = effectiveTimeouts(t);
  return [
    `net.netfilter.nf_conntrack_tcp_timeout_established=${e.tcpEstablishedSec}`,
    `net.netfilter.nf_conntrack_udp_timeout_stream=${e.udpSec}`,
  ];
}

/**
 * IPVS sysctls Docker also sets: conntrack for SNAT of ingress, expire conns of removed reals. Plus
 * one of ours: IPVS refuses a connection to a service with no usable real server (empty, or every
 * task draining) with ICMP port unreachable, and the kernel rate-limits that ICMP (per peer: a burst
 * of 6, then 1/s; icmp_ratemask bit 3). A client opening a few connections in a row then had its SYN
 * dropped silently and saw "refused" only after its 1 s SYN retransmit (seen in the IPVS compliance
 * run: 56, 9, 1042 ms). Exempting destination-unreachable in the LB's own namespace keeps "an empty
 * VIP refuses at once" true under bursts; it amplifies nothing (one ICMP per SYN received).
 * 6160 = the default mask 6168 (0x1818) without bit 3.
 */
export const IPVS_SYSCTLS: readonly string[] = Object.freeze([
  'net.ipv4.vs.conntrack=1',
  'net.ipv4.vs.expire_nodest_conn=1',
  'net.ipv4.vs.expire_quiescent_template=1',
  'net.ipv4.ip_forward=1',
  'net.ipv4.icmp_ratemask=6160',
]);
