/**
 * Underlay `host:port` strings, IPv4 and IPv6 alike (issue 19 §2, an IPv6 underlay): an IPv6 host is
 * written in brackets, `[fd00::1]:7946` (RFC 3986, what Docker and memberlist print), because its
 * own colons make `lastIndexOf(':')` ambiguous without them. Every place that joins or splits an
 * address and a port (gossip members, seeds, join addresses, manager and peer API addresses) goes
 * through these two functions, so an IPv4 underlay prints exactly what it always did.
 * Pure; bad input throws MESHD_BAD_ARGUMENT.
 */
import { MeshError } from './errors.js';
import { isIp } from './ipam/addr.js';
import { canonicalIp6, isIp6 } from './ipam/addr6.js';

/** `host:port`, the host in brackets when it is an IPv6 address (no brackets added twice). */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/** An IPv4 or IPv6 address (IPv6 in any valid spelling). */
export function isUnderlayIp(s: string): boolean {
  return isIp(s) || isIp6(s);
}

/** 4 or 6 for an address; throws on anything else. */
export function ipFamily(s: string): 4 | 6 {
  if (isIp(s)) return 4;
  if (isIp6(s)) return 6;
  throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IP address ${JSON.stringify(s)}`);
}

/**
 * Splits `host:port` / `[v6]:port` into the host (brackets removed, an IPv6 host canonical) and the
 * port. A bare IPv6 host with a port (`fd00::1:7946`) is refused: it cannot be told from an address.
 * `what` names the field in the error ("gossip address", "--advertise-addr").
 */
export function parseHostPort(s: string, what = 'address'): { host: string; port: number } {
  const bad = (why: string): MeshError => new MeshError('MESHD_BAD_ARGUMENT', `bad ${what} ${JSON.stringify(s)}: ${why}`, { field: what, value: s });
  if (typeof s !== 'string' || s.length === 0) throw bad('expected host:port or [ipv6]:port');
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw bad('expected [ipv6]:port');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIp6(host)) throw bad('the host in brackets is not an IPv6 address');
    host = canonicalIp6(host);
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0) throw bad('expected host:port or [ipv6]:port');
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) throw bad('an IPv6 host must be written in brackets, [ipv6]:port');
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw bad('the port must be 1..65535');
  return { host, port };
}

/** The host part of a `host:port` / `[v6]:port` string, or the string itself when it has no port. */
export function hostOfAddr(addr: string): string {
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    return close > 0 ? addr.slice(1, close) : addr;
  }
  if (isIp6(addr)) return addr;
  return addr.replace(/:\d+$/, '');
}
