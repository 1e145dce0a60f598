/**
 * nftables text of a task namespace's policy (issue #19). Pure: NsPolicy in, `nft -f -` script
 * out; golden-tested (test/unit/policy-render.test.ts).
 *
 * Shape (one table per task namespace, input hook):
 *
 *   table inet meshd-policy {
 *     set allow-<network id> { type ipv4_addr; elements = { ... } }   one per filtered attachment
 *     chain input {
 *       type filter hook input priority filter; policy accept;
 *       ct state established,related accept          replies and running flows are never cut
 *       iif "lo" accept                              the task reaching itself
 *       ip daddr A ip saddr @allow-N accept
 *       ip daddr A meta l4proto tcp reject with tcp reset
 *       ip daddr A reject with icmpx type port-unreachable
 *       ip6 daddr { fe80::/10, ff00::/8 } tcp|udp reject   link-local: no way around the rules
 *     }
 *   }
 *
 * Why REJECT and not drop: a denied client must learn it at once (TCP reset, ICMP port
 * unreachable for UDP and the rest), never wait out a timeout (issue #19). Why per-address
 * rules and not a policy drop: only the guarded addresses are filtered; 127.0.0.11 (DNS) and
 * any other address in the namespace stay untouched.
 *
 * Why a named set: an endpoint change (a client task started or gone) is then one
 * `add element` / `delete element` in one transaction per namespace, the rules never change;
 * a change of the rules themselves (allow-from edited, network added) re-creates the table in
 * one atomic transaction (`add table` + `delete table` + definition, like the LB's full sync).
 */
import { sameShape, type NsPolicy } from './desired.js';

export const POLICY_TABLE = 'meshd-policy';

export const setName = (networkId: string): string => `allow-${networkId}`;
/** The IPv6 set of a dual-stack attachment (issue #19 item 2 part 2). */
export const setName6 = (networkId: string): string => `allow6-${networkId}`;

/** `add table` first so the `delete table` of a fresh namespace does not fail. */
function header(): string {
  return `add table inet ${POLICY_TABLE}\ndelete table inet ${POLICY_TABLE}\n`;
}

/** The whole table, replacing whatever the namespace held (one transaction). */
export function renderFull(p: NsPolicy): string {
  const lines: string[] = [`table inet ${POLICY_TABLE} {`];
  for (const r of p.rules) {
    lines.push(`\tset ${setName(r.networkId)} {`, '\t\ttype ipv4_addr', `\t\tcomment "${p.service} on ${r.networkName}: ${r.mode}${r.allowFrom.length ? ` allow-from ${r.allowFrom.join(',')}` : ''}"`);
    if (r.allowed.length) lines.push(`\t\telements = { ${r.allowed.join(', ')} }`);
    lines.push('\t}');
    if (r.daddr6 === undefined) continue;
    lines.push(`\tset ${setName6(r.networkId)} {`, '\t\ttype ipv6_addr');
    if (r.allowed6?.length) lines.push(`\t\telements = { ${r.allowed6.join(', ')} }`);
    lines.push('\t}');
  }
  lines.push('\tchain input {', '\t\ttype filter hook input priority filter; policy accept;', '\t\tct state established,related accept', '\t\tiif "lo" accept');
  for (const r of p.rules) {
    lines.push(
      `\t\tip daddr ${r.daddr} ip saddr @${setName(r.networkId)} accept`,
      `\t\tip daddr ${r.daddr} meta l4proto tcp reject with tcp reset comment "denied by policy of ${p.service}"`,
      `\t\tip daddr ${r.daddr} reject with icmpx type port-unreachable comment "denied by policy of ${p.service}"`,
    );
    // IPv6: the same rule for the task's IPv6 address, so IPv6 is filtered exactly like IPv4 (fail closed).
    if (r.daddr6 !== undefined) {
      lines.push(
        `\t\tip6 daddr ${r.daddr6} ip6 saddr @${setName6(r.networkId)} accept`,
        `\t\tip6 daddr ${r.daddr6} meta l4proto tcp reject with tcp reset comment "denied by policy of ${p.service}"`,
        `\t\tip6 daddr ${r.daddr6} meta l4proto udp reject with icmpx type port-unreachable comment "denied by policy of ${p.service}"`,
      );
    }
  }
  // Link-local IPv6 (fe80::/10, and multicast): every task interface has a link-local address once
  // IPv6 is on in its namespace (the netns runtime leaves it on even on IPv4-only networks), and a
  // neighbour on the same overlay L2 reaches it — a task on the same bridge at once (neighbour
  // discovery floods there), a remote one with a static neighbour entry (the VXLAN FDB carries every
  // task's MAC). The rules above name the task's addresses only, so this was a way around them:
  // TCP/UDP to a link-local or multicast destination is refused for a filtered task, whoever sends
  // it. ICMPv6 is left alone (neighbour discovery and router messages need it); replies to the
  // task's own connections pass (established, first rule).
  if (p.rules.length) {
    lines.push(
      `\t\tip6 daddr { fe80::/10, ff00::/8 } meta l4proto tcp reject with tcp reset comment "denied by policy of ${p.service}: link-local"`,
      `\t\tip6 daddr { fe80::/10, ff00::/8 } meta l4proto udp reject with icmpx type port-unreachable comment "denied by policy of ${p.service}: link-local"`,
    );
  }
  lines.push('\t}', '}');
  return header() + lines.join('\n') + '\n';
}

/** Removes the table (the task's policy became open). Safe on a namespace without it. */
export function renderRemove(): string {
  return header();
}

/**
 * The smallest script taking the namespace from `prev` (last applied) to `next`: element adds
 * and deletes when only the allowed sets changed, the full table otherwise, the removal when
 * `next` is null; '' when nothing changed. A delta that fails (kernel drifted) is retried as a
 * full render by the caller.
 */
export function renderDelta(prev: NsPolicy | null, next: NsPolicy | null): string {
  if (!next) return prev ? renderRemove() : '';
  if (!prev || !sameShape(prev, next)) return renderFull(next);
  const out: string[] = [];
  next.rules.forEach((r, i) => {
    const before = new Set(prev.rules[i]!.allowed);
    const now = new Set(r.allowed);
    const del = prev.rules[i]!.allowed.filter((ip) => !now.has(ip));
    const add = r.allowed.filter((ip) => !before.has(ip));
    if (del.length) out.push(`delete element inet ${POLICY_TABLE} ${setName(r.networkId)} { ${del.join(', ')} }`);
    if (add.length) out.push(`add element inet ${POLICY_TABLE} ${setName(r.networkId)} { ${add.join(', ')} }`);
    if (r.daddr6 === undefined) return;
    const before6 = new Set(prev.rules[i]!.allowed6 ?? []);
    const now6 = new Set(r.allowed6 ?? []);
    const del6 = [...before6].filter((ip) => !now6.has(ip));
    const add6 = [...now6].filter((ip) => !before6.has(ip));
    if (del6.length) out.push(`delete element inet ${POLICY_TABLE} ${setName6(r.networkId)} { ${del6.join(', ')} }`);
    if (add6.length) out.push(`add element inet ${POLICY_TABLE} ${setName6(r.networkId)} { ${add6.join(', ')} }`);
  });
  return out.length ? out.join('\n') + '\n' : '';
}
