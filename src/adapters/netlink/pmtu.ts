/**
 * Path-MTU probes to peers' underlay addresses (issue 19 §5), for the overlay's MTU policy
 * (core/overlay/mtu.ts).
 *
 * Why DF pings and not the kernel's PMTU cache (`ip route get`): the cache only learns from ICMP
 * "fragmentation needed", and the paths that hurt are exactly those that send none — a switch or
 * bridge port with a smaller MTU (or a cloud fabric) drops the oversized frame silently. A probe
 * with DF set that goes unanswered is the only signal that works there, and it works without
 * netem. A probe larger than this node's own route MTU fails at once, locally ("message too long").
 *
 * Cost: ONE process from the agent per round (`sh`, under `nice -n 10`), whatever the number of
 * peers: the script probes all peers in parallel (a subshell and a `ping` per peer). Niced because
 * those forks compete with the agent's own event loop for CPU (they share its session, i.e. its
 * autogroup): gossip's probe deadlines (100 ms in the `local` preset) matter more than how fast
 * an MTU round ends. Per peer it first tries the largest size (the common case, a
 * clean path: one ping, done), then the smallest (nothing passes: the peer is unreachable, not a
 * small path → no result), and only then binary-searches between them. Each try sends two
 * packets (a single lost reply must not read as a small path on a loaded machine) and waits at
 * most `timeoutS` for an answer, so a round costs about 1 s per failed try (≈ 4–5 s when a path
 * is smaller than the link).
 *
 * Sizes are whole IP packets (what an MTU means); ping's `-s` is the ICMP payload, 28 bytes less.
 */
import { MeshError } from '../../core/errors.js';
import { isUnderlayIp } from '../../core/hostport.js';
import type { Exec } from '../exec.js';

/** Niceness of the probe process and its pings (they yield the CPU to the agent and its peers). */
export const PROBE_NICE = 10;

/** IPv4 header (20) + ICMP echo header (8); over IPv6 the script uses 48 (40 + 8). */
export const PING_OVERHEAD = 28;

export interface ProbeOptions {
  /** Largest packet to try (bytes): this node's link MTU. */
  max: number;
  /** Smallest packet to try (bytes); below it a peer counts as unreachable. */
  min: number;
  /** Seconds to wait for a reply per try (ping -W; iputils takes fractions). */
  timeoutS: number;
}

/**
 * The probe script (`nice -n 10 sh -c SCRIPT sh MAX MIN TIMEOUT PEER...`): prints "PEER SIZE" per peer, or
 * "PEER -" when not even the smallest size got through. Pure text; peers go in as arguments.
 */
export const PROBE_SCRIPT = [
  'max=$1; min=$2; w=$3; shift 3',
  // Two packets 50 ms apart; exit 0 when at least one reply came back.
  // ICMP payload = packet − IP header − ICMP header: 28 over IPv4, 48 over IPv6 (an IPv6 underlay).
  'try() { case "$1" in *:*) h=48;; *) h=28;; esac; ping -n -q -M do -c 2 -i 0.05 -W "$w" -s $(($2 - h)) "$1" >/dev/null 2>&1; }',
  'probe() {',
  '  p=$1; hi=$max; lo=$min',
  '  if try "$p" "$hi"; then echo "$p $hi"; return; fi',
  '  if ! try "$p" "$lo"; then echo "$p -"; return; fi',
  '  while [ $((hi - lo)) -gt 1 ]; do',
  '    m=$(((hi + lo) / 2))',
  '    if try "$p" "$m"; then lo=$m; else hi=$m; fi',
  '  done',
  '  echo "$p $lo"',
  '}',
  'for p in "$@"; do probe "$p" & done',
  'wait',
].join('\n');

/** Parses the script's output into peer → largest packet that passed (null: none did). */
export function parseProbeOutput(text: string, peers: readonly string[]): Record<string, number | null> {
  const want = new Set(peers);
  const out: Record<string, number | null> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const m = /^(\S+) (\d+|-)$/.exec(t);
    if (!m || !want.has(m[1]!)) throw new MeshError('MESHD_INTERNAL', `path-MTU probe: unexpected output line ${JSON.stringify(t.slice(0, 100))}`);
    out[m[1]!] = m[2] === '-' ? null : Number(m[2]);
  }
  const missing = peers.filter((p) => !(p in out));
  if (missing.length) throw new MeshError('MESHD_INTERNAL', `path-MTU probe: no result for ${missing.join(', ')}`, { output: text.slice(0, 500) });
  return out;
}

/** Probes every peer in one process; an empty list costs nothing. */
export async function probePathMtu(exec: Exec, peers: readonly string[], o: ProbeOptions): Promise<Record<string, number | null>> {
  for (const p of peers) if (!isUnderlayIp(p)) throw new MeshError('MESHD_BAD_ARGUMENT', `path-MTU probe: invalid peer address ${JSON.stringify(p)}`);
  if (!(Number.isInteger(o.max) && Number.isInteger(o.min) && o.min > PING_OVERHEAD && o.min <= o.max)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `path-MTU probe: invalid size range ${o.min}..${o.max}`);
  }
  if (!(o.timeoutS > 0 && o.timeoutS <= 30)) throw new MeshError('MESHD_BAD_ARGUMENT', `path-MTU probe: invalid timeout ${o.timeoutS} s`);
  if (peers.length === 0) return {};
  // Worst case: ~log2(max-min)+2 failed tries of (timeout + 50 ms) each, plus slack for a loaded machine.
  const tries = Math.ceil(Math.log2(Math.max(2, o.max - o.min))) + 2;
  const r = await exec.run('nice', ['-n', String(PROBE_NICE), 'sh', '-c', PROBE_SCRIPT, 'sh', String(o.max), String(o.min), String(o.timeoutS), ...peers], {
    timeoutMs: Math.ceil(tries * (o.timeoutS + 0.5) * 1000) + 10_000,
  });
  if (r.code !== 0) throw new MeshError('MESHD_EXEC_FAILED', `path-MTU probe failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  return parseProbeOutput(r.stdout, peers);
}

/**
 * MTU of the interface holding `ip` (this node's underlay link), 1500 when no interface holds it
 * or `ip` cannot be read (one process).
 */
export async function readLinkMtu(exec: Exec, ip: string): Promise<number> {
  // Both families: an IPv6 underlay's address is on its link like an IPv4 one.
  const r = await exec.run('ip', ['-j', 'addr', 'show']);
  if (r.code !== 0) return 1500;
  const links = JSON.parse(r.stdout || '[]') as Array<{ mtu?: number; addr_info?: Array<{ local?: string }> }>;
  const l = links.find((x) => x.addr_info?.some((a) => a.local === ip));
  return l?.mtu ?? 1500;
}
