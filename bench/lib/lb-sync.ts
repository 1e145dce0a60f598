/**
 * The LB sync benchmark's workload and peer, shared by bench/lb.ts (this machine, nftables vs
 * iptables-restore) and bench/lb-ipvs-vm.ts (inside the IPVS VM: IPVS vs nftables vs
 * iptables-restore): N services × EPS endpoints, a kube-proxy-iptables-style ruleset for the peer
 * and its ≥1.26 minimal one-endpoint restore, and CPU/wall timers.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { realExec } from '../../src/adapters/exec.js';
import type { Backend, LbDesired } from '../../src/core/lb/model.js';

export const EPS = 10;

export function ip4(base: number, n: number): string {
  return `10.${base + (n >>> 16)}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface Svc {
  vip: string;
  eps: string[];
}

export function services(n: number): Svc[] {
  return Array.from({ length: n }, (_, i) => ({ vip: ip4(96, i + 1), eps: Array.from({ length: EPS }, (_, j) => ip4(200, i * EPS + j + 1)) }));
}

export function desired(svcs: Svc[]): LbDesired {
  return {
    services: svcs.map((s, i) => ({ id: `svc-${i}`, name: `svc-${i}`, vip: s.vip, ports: [{ proto: 'tcp' as const, port: 80, targetPort: 8080 }], backends: s.eps.map((ip, j): Backend => ({ id: `t-${i}-${j}`, ip, state: 'active' })) })),
    ingress: [],
  };
}

/** kube-proxy's chain naming: prefix + first 16 chars of base32(sha256(key)). */
export function kchain(prefix: string, key: string): string {
  const h = createHash('sha256').update(key).digest();
  const b32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let val = 0;
  let out = '';
  for (const byte of h) {
    val = (val << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += b32[(val >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}${out}`;
}

export const svcChain = (i: number): string => kchain('KUBE-SVC-', `ns/svc-${i}:http`);
export const sepChain = (i: number, ip: string): string => kchain('KUBE-SEP-', `ns/svc-${i}:http${ip}:8080`);

export function svcRules(i: number, s: Svc): string[] {
  const n = s.eps.length;
  return s.eps.map((ip, j) => {
    const prob = j === n - 1 ? '' : ` -m statistic --mode random --probability ${(1 / (n - j)).toFixed(10)}`;
    return `-A ${svcChain(i)} -m comment --comment "ns/svc-${i}:http -> ${ip}:8080"${prob} -j ${sepChain(i, ip)}`;
  });
}

export function sepRules(i: number, ip: string): string[] {
  const c = sepChain(i, ip);
  return [`-A ${c} -m comment --comment ns/svc-${i}:http -s ${ip}/32 -j KUBE-MARK-MASQ`, `-A ${c} -m comment --comment ns/svc-${i}:http -p tcp -m tcp -j DNAT --to-destination ${ip}:8080`];
}

export function servicesRules(svcs: Svc[]): string[] {
  return svcs.map((s, i) => `-A KUBE-SERVICES -m comment --comment "ns/svc-${i}:http cluster IP" -d ${s.vip}/32 -p tcp -m tcp --dport 80 -j ${svcChain(i)}`);
}

export function iptFull(svcs: Svc[]): string {
  const decl = [':KUBE-SERVICES - [0:0]', ':KUBE-MARK-MASQ - [0:0]', ':KUBE-POSTROUTING - [0:0]'];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ...servicesRules(svcs),
  ];
  svcs.forEach((s, i) => {
    decl.push(`:${svcChain(i)} - [0:0]`, ...s.eps.map((ip) => `:${sepChain(i, ip)} - [0:0]`));
    rules.push(...svcRules(i, s), ...s.eps.flatMap((ip) => sepRules(i, ip)));
  });
  return ['*nat', ...decl, ...rules, 'COMMIT', ''].join('\n');
}

/**
 * kube-proxy ≥1.26 partial restore after endpoint `oldIp` of service k became `newIp` (the stale
 * SEP chain is declared, which flushes it, then deleted — as kube-proxy does).
 */
export function iptOneChange(svcs: Svc[], k: number, oldIp: string): string {
  const s = svcs[k]!;
  const newIp = s.eps[0]!;
  return ['*nat', ':KUBE-SERVICES - [0:0]', `:${svcChain(k)} - [0:0]`, `:${sepChain(k, newIp)} - [0:0]`, `:${sepChain(k, oldIp)} - [0:0]`, ...servicesRules(svcs), ...svcRules(k, s), ...sepRules(k, newIp), `-X ${sepChain(k, oldIp)}`, 'COMMIT', ''].join('\n');
}

export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * CPU time (ms) of this process plus its reaped children (nft, iptables-restore run through
 * `ip netns exec`, which execs them: same process): load-independent, unlike wall time on a
 * shared machine. Children's time comes from /proc/self/stat (cutime + cstime, clock ticks).
 */
export function cpuNow(): { self: number; children: number } {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // USER_HZ
  const u = process.cpuUsage();
  return { self: (u.user + u.system) / 1000, children: (Number(rest[13]) + Number(rest[14])) * tick };
}

export async function cpuOf(f: () => Promise<unknown>): Promise<{ wall: number; self: number; children: number }> {
  const c0 = cpuNow();
  const wall = await timed(f);
  const c1 = cpuNow();
  return { wall, self: c1.self - c0.self, children: c1.children - c0.children };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const r1 = (x: number): number => Math.round(x * 10) / 10;

export async function freshNs(ns: string): Promise<void> {
  await realExec.run('ip', ['netns', 'del', ns]);
  await realExec.check('ip', ['netns', 'add', ns]);
}
