/**
 * VXLAN guard (lesson of CVE-2023-28840/28841/28842): on each host namespace, UDP to the
 * VXLAN port is accepted only from current members' underlay addresses. The rule sits in
 * an nftables `prerouting` chain at priority `raw` (-300): before conntrack, before any
 * `filter`-priority chain an admin may add, so no later accept can re-open the port.
 * Everything else to that port is counted and dropped.
 *
 * IPv6 underlays (issue 19 §2): members' IPv6 addresses sit in a second set, `members6`
 * (`ipv6_addr`; an nft set holds one family), matched by `ip6 saddr`; the drop rule is family-blind
 * (`inet`), so an IPv6 source outside `members6` is dropped and counted like an IPv4 one — fail
 * closed on both. Non-first IPv6 fragments pass for the reason IPv4 ones do (the first fragment
 * carries the UDP header and meets the rules). A guard installed before `members6` existed is
 * reinstalled by ensure() (read back as `ipv6: false`).
 *
 * Non-first IPv4 fragments pass first: they carry no UDP header, yet nft (without conntrack's
 * defragmentation in the namespace) reads "dport" from their payload, so the drop rule ate the
 * middle of any fragmented datagram whose data happened to hold 4789 at that offset (gossip-security
 * fuzz: one 1500-byte fragment of a 40 KB datagram to the gossip port, every run with seed 42). A
 * non-member's fragmented VXLAN packet is still stopped: its first fragment has the UDP header and is
 * dropped, so the rest never reassembles.
 *
 * Membership changes rewrite only the set's elements, in ONE `nft -f -` transaction
 * (flush + add is atomic: there is no instant with an empty set). Failure to install or
 * verify throws MeshError, and callers must not bring the overlay up (fail closed).
 *
 * Cost (issue 18 §3: the allow-list follows gossip membership, so this runs on every member
 * change of every agent): `update` is one process (the set's elements, no read-back: nft's
 * transaction either commits or fails); `ensure` is one `nft -j list` when the kernel already
 * holds exactly what is asked, else list + write + list to verify. How often each runs is the
 * pacer's decision (core/overlay/guard-pacer.ts).
 */
import { MeshError } from '../../core/errors.js';
import { isIp } from '../../core/ipam/addr.js';
import { canonicalIp6, isIp6 } from '../../core/ipam/addr6.js';
import type { Exec } from '../exec.js';

export const GUARD_TABLE = 'meshd-vxlan';

export interface GuardState {
  installed: boolean;
  port: number | null;
  /** Sorted allowed source addresses. */
  allow: string[];
  /** Packets dropped by the guard since install. */
  droppedPackets: number;
  /** The rule letting non-first fragments through is in place (older installs lack it: reinstalled). */
  fragmentsPass: boolean;
  /** The IPv6 member set and fragment rule are in place (older installs lack them: reinstalled). */
  ipv6: boolean;
}

export interface VxlanGuard {
  /** Installs or updates the guard so that exactly `allow` may send to `port`; verifies. */
  ensure(port: number, allow: readonly string[]): Promise<void>;
  /**
   * Rewrites only the allow-list in one transaction, without reading back; throws MeshError when
   * the guard is not installed (the set is missing) — then ensure() must run.
   */
  update(port: number, allow: readonly string[]): Promise<void>;
  read(): Promise<GuardState>;
  remove(): Promise<void>;
}

/**
 * Validates a port and member list (IPv4 and IPv6 addresses); returns the members deduplicated and
 * sorted, IPv6 ones in canonical form (how nft prints them back, so a read-back compares equal).
 */
export function checkGuardArgs(port: number, allow: readonly string[]): string[] {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid VXLAN port ${port}`);
  const out = new Set<string>();
  for (const a of allow) {
    if (isIp(a)) out.add(a);
    else if (isIp6(a)) out.add(canonicalIp6(a));
    else throw new MeshError('MESHD_BAD_ARGUMENT', `invalid member address ${JSON.stringify(a)}`);
  }
  return [...out].sort();
}

/** The allow-list split by family: `members` (ipv4_addr) and `members6` (ipv6_addr). */
function byFamily(allow: readonly string[]): { v4: string[]; v6: string[] } {
  return { v4: allow.filter((a) => !a.includes(':')), v6: allow.filter((a) => a.includes(':')) };
}

const elements = (allow: readonly string[]): string => (allow.length ? `elements = { ${allow.join(', ')} }` : '');

/** Full install script: create-if-missing, delete, recreate — one atomic transaction. */
export function renderGuardInstall(port: number, allowIn: readonly string[]): string {
  const { v4, v6 } = byFamily(checkGuardArgs(port, allowIn));
  return [
    `table inet ${GUARD_TABLE} {}`,
    `delete table inet ${GUARD_TABLE}`,
    `table inet ${GUARD_TABLE} {`,
    '  counter dropped {}',
    '  set members {',
    '    type ipv4_addr',
    ...(v4.length ? [`    ${elements(v4)}`] : []),
    '  }',
    '  set members6 {',
    '    type ipv6_addr',
    ...(v6.length ? [`    ${elements(v6)}`] : []),
    '  }',
    '  chain guard {',
    '    type filter hook prerouting priority raw; policy accept;',
    '    ip frag-off & 0x1fff != 0 accept',
    '    frag frag-off != 0 accept',
    `    ip saddr @members udp dport ${port} accept`,
    `    ip6 saddr @members6 udp dport ${port} accept`,
    `    udp dport ${port} counter name "dropped" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Membership update: only the set's elements, atomically; the drop counter is kept. */
export function renderGuardUpdate(allowIn: readonly string[]): string {
  const { v4, v6 } = byFamily(checkGuardArgs(1, allowIn));
  return [
    `flush set inet ${GUARD_TABLE} members`,
    `flush set inet ${GUARD_TABLE} members6`,
    ...(v4.length ? [`add element inet ${GUARD_TABLE} members { ${v4.join(', ')} }`] : []),
    ...(v6.length ? [`add element inet ${GUARD_TABLE} members6 { ${v6.join(', ')} }`] : []),
    '',
  ].join('\n');
}

interface NftJson {
  nftables?: Array<{
    set?: { name?: string; elem?: unknown[] };
    counter?: { name?: string; packets?: number };
    rule?: { chain?: string; expr?: Array<{ match?: { left?: { payload?: { protocol?: string; field?: string }; exthdr?: { name?: string; field?: string }; '&'?: unknown[] }; right?: unknown } }> };
  }>;
}

/** Parses `nft -j list table inet meshd-vxlan` into GuardState (pure; unit-tested). */
export function parseGuard(text: string): GuardState {
  const doc = JSON.parse(text) as NftJson;
  let port: number | null = null;
  let allow: string[] = [];
  let dropped = 0;
  let fragmentsPass = false;
  let members6 = false;
  let fragments6Pass = false;
  const elems = (e: unknown[] | undefined): string[] => (e ?? []).filter((x): x is string => typeof x === 'string');
  for (const o of doc.nftables ?? []) {
    if (o.set?.name === 'members') allow = [...allow, ...elems(o.set.elem)];
    if (o.set?.name === 'members6') {
      members6 = true;
      allow = [...allow, ...elems(o.set.elem)];
    }
    if (o.counter?.name === 'dropped') dropped = o.counter.packets ?? 0;
    if (o.rule?.chain === 'guard') {
      for (const x of o.rule.expr ?? []) {
        const p = x.match?.left?.payload;
        if (p?.protocol === 'udp' && p.field === 'dport' && typeof x.match?.right === 'number') port = x.match.right;
        const masked = x.match?.left?.['&'];
        const fp = (masked?.[0] as { payload?: { protocol?: string; field?: string } } | undefined)?.payload;
        if (fp?.protocol === 'ip' && fp.field === 'frag-off' && masked?.[1] === 0x1fff) fragmentsPass = true;
        const xh = x.match?.left?.exthdr;
        if (xh?.name === 'frag' && xh.field === 'frag-off' && x.match?.right === 0) fragments6Pass = true;
      }
    }
  }
  return { installed: true, port, allow: allow.sort(), droppedPackets: dropped, fragmentsPass, ipv6: members6 && fragments6Pass };
}

export class NftVxlanGuard implements VxlanGuard {
  constructor(private readonly exec: Exec, private readonly hostNs: string | null) {}

  private nft(args: readonly string[], input?: string): Promise<string> {
    const ns = this.hostNs ?? undefined;
    return this.exec.check('nft', args, { ...(input !== undefined ? { input } : {}), ...(ns ? { netns: ns } : {}) });
  }

  async read(): Promise<GuardState> {
    const r = await this.exec.run('nft', ['-j', 'list', 'table', 'inet', GUARD_TABLE], this.hostNs ? { netns: this.hostNs } : {});
    if (r.code !== 0) return { installed: false, port: null, allow: [], droppedPackets: 0, fragmentsPass: false, ipv6: false };
    return parseGuard(r.stdout);
  }

  async ensure(port: number, allowIn: readonly string[]): Promise<void> {
    const allow = checkGuardArgs(port, allowIn);
    try {
      const cur = await this.read();
      if (cur.installed && cur.port === port && cur.fragmentsPass && cur.ipv6) {
        // Already exactly right: the read was the verification (one process).
        if (cur.allow.join(',') === allow.join(',')) return;
        await this.nft(['-f', '-'], renderGuardUpdate(allow));
      } else {
        await this.nft(['-f', '-'], renderGuardInstall(port, allow));
      }
      const after = await this.read();
      if (!after.installed || after.port !== port || !after.fragmentsPass || !after.ipv6 || after.allow.join(',') !== allow.join(',')) {
        throw new MeshError('MESHD_INTERNAL', `VXLAN guard verification failed: port ${after.port}, members [${after.allow.join(', ')}]`);
      }
    } catch (e) {
      throw new MeshError('MESHD_NOT_READY', `cannot install the VXLAN guard (table inet ${GUARD_TABLE}) on ${this.hostNs ?? 'this host'}: ` +
        `${(e as Error).message}; overlay stays down (fail closed)`, { hostNs: this.hostNs }, { cause: e });
    }
  }

  async update(port: number, allowIn: readonly string[]): Promise<void> {
    const allow = checkGuardArgs(port, allowIn);
    try {
      await this.nft(['-f', '-'], renderGuardUpdate(allow));
    } catch (e) {
      throw new MeshError('MESHD_NOT_READY', `cannot update the VXLAN guard's members (table inet ${GUARD_TABLE}) on ${this.hostNs ?? 'this host'}: ` +
        `${(e as Error).message}; a full reinstall follows`, { hostNs: this.hostNs }, { cause: e });
    }
  }

  async remove(): Promise<void> {
    await this.nft(['-f', '-'], `table inet ${GUARD_TABLE} {}\ndelete table inet ${GUARD_TABLE}\n`);
  }
}
