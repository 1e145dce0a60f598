/**
 * Top-level `networks.<key>` of a compose file: overlay (default) or macvlan with `driver_opts`,
 * `labels`, `internal`, `attachable`, `external`/`name` and `ipam.config` entries: one IPv4 (subnet,
 * gateway, ip_range, aux_addresses) and, with `enable_ipv6: true` (issue #19 item 2), one IPv6 entry
 * (`subnet` only: its gateway is always ::1). Unknown keys are refused naming the path, and so is an
 * IPv6 entry without `enable_ipv6: true` (never dropped). The manager checks what the options mean.
 */
import { looksV6 } from '../ipam/addr6.js';
import { composeLabels } from './container.js';
import { asBool, asList, asObj, asString, at, checkKeys, describe, fail, isObj } from './fields.js';

const NETWORK_KEYS = ['driver', 'ipam', 'attachable', 'external', 'name', 'driver_opts', 'labels', 'internal', 'enable_ipv6'];
const NETWORK_UNSUPPORTED: string[] = [];
/** Compose's own rule for network keys (the same as for services). */
const KEY_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

export interface ComposeNetwork {
  key: string;
  /** `name:` override (used as is, not prefixed); for external networks the existing network's name. */
  name?: string;
  external: boolean;
  subnet?: string;
  attachable: boolean;
  /** overlay (default) or macvlan; the manager checks options and refuses what it cannot honour. */
  driver?: string;
  /** `driver_opts` (macvlan: parent, macvlan_mode). */
  options?: Record<string, string>;
  labels?: Record<string, string>;
  internal?: boolean;
  /** `ipam.config[0].gateway / ip_range / aux_addresses`. */
  gateway?: string;
  ipRange?: string;
  auxAddresses?: Record<string, string>;
  /** `enable_ipv6` (dual stack) and the IPv6 `ipam.config` entry's subnet (absent: a ULA /64 is picked). */
  ipv6?: boolean;
  subnet6?: string;
  /** `x-meshd-default-deny` (issue #19): `network create --default-deny`. */
  defaultDeny?: boolean;
}

/** meshd's extension key under a network; any other `x-meshd-*` key is refused (see parse.ts). */
export const DEFAULT_DENY_KEY = 'x-meshd-default-deny';

export function composeNetwork(key: string, v: unknown): ComposeNetwork {
  const path = `networks.${key}`;
  if (!KEY_RE.test(key)) fail(path, 'network keys are [a-zA-Z0-9._-], starting with a letter or digit');
  const out: ComposeNetwork = { key, external: false, attachable: false };
  if (v === null || v === undefined) return out;
  const o = asObj(v, path);
  checkKeys(o, path, NETWORK_KEYS, NETWORK_UNSUPPORTED);
  for (const k of Object.keys(o)) if (k.startsWith('x-meshd-') && k !== DEFAULT_DENY_KEY) fail(at(path, k), `unknown meshd key (known: ${DEFAULT_DENY_KEY})`);
  if (o[DEFAULT_DENY_KEY] !== undefined) out.defaultDeny = asBool(o[DEFAULT_DENY_KEY], at(path, DEFAULT_DENY_KEY));
  if (o.driver !== undefined && o.driver !== 'overlay' && o.driver !== 'macvlan') fail(at(path, 'driver'), `only "overlay" and "macvlan" are supported, got ${describe(o.driver)}`);
  if (o.driver !== undefined) out.driver = o.driver as string;
  if (o.driver_opts !== undefined && o.driver_opts !== null) out.options = stringMap(o.driver_opts, at(path, 'driver_opts'));
  if (o.labels !== undefined && o.labels !== null) out.labels = composeLabels(o.labels, at(path, 'labels'));
  if (o.internal !== undefined) out.internal = asBool(o.internal, at(path, 'internal'));
  if (o.enable_ipv6 !== undefined && asBool(o.enable_ipv6, at(path, 'enable_ipv6'))) out.ipv6 = true;
  if (o.attachable !== undefined) out.attachable = asBool(o.attachable, at(path, 'attachable'));
  if (o.name !== undefined) out.name = asString(o.name, at(path, 'name'));
  if (o.external !== undefined) {
    // `external: {name: x}` is the old (v3.4-) spelling of `external: true` + `name: x`.
    if (isObj(o.external)) {
      checkKeys(o.external, at(path, 'external'), ['name'], []);
      out.external = true;
      if (o.external.name !== undefined) out.name = asString(o.external.name, at(path, 'external.name'));
    } else out.external = asBool(o.external, at(path, 'external'));
  }
  if (o.ipam !== undefined) {
    const ipam = asObj(o.ipam, at(path, 'ipam'));
    checkKeys(ipam, at(path, 'ipam'), ['driver', 'config'], []);
    if (ipam.driver !== undefined && ipam.driver !== 'default') fail(at(path, 'ipam.driver'), `only "default" is supported, got ${describe(ipam.driver)}`);
    if (ipam.config !== undefined) {
      const cfg = asList(ipam.config, at(path, 'ipam.config'));
      if (cfg.length > 2) fail(at(path, 'ipam.config'), 'at most two entries: one IPv4 and one IPv6 subnet');
      let v4Seen = false;
      for (const [i, e] of cfg.entries()) {
        const p = at(path, `ipam.config[${i}]`);
        const c = asObj(e, p);
        if (c.subnet !== undefined && looksV6(asString(c.subnet, at(p, 'subnet')))) {
          checkKeys(c, p, ['subnet'], ['gateway', 'ip_range', 'aux_addresses']);
          if (out.subnet6 !== undefined) fail(p, 'a second IPv6 subnet: at most one per network');
          if (!out.ipv6) fail(at(p, 'subnet'), `an IPv6 subnet needs enable_ipv6: true on ${path}`);
          out.subnet6 = asString(c.subnet, at(p, 'subnet'));
          continue;
        }
        if (v4Seen) fail(p, 'a second IPv4 entry: at most one IPv4 subnet per network');
        v4Seen = true;
        checkKeys(c, p, ['subnet', 'gateway', 'ip_range', 'aux_addresses'], []);
        if (c.subnet !== undefined) out.subnet = cidr(c.subnet, at(p, 'subnet'));
        if (c.gateway !== undefined) out.gateway = asString(c.gateway, at(p, 'gateway'));
        if (c.ip_range !== undefined) out.ipRange = cidr(c.ip_range, at(p, 'ip_range'));
        if (c.aux_addresses !== undefined && c.aux_addresses !== null) out.auxAddresses = stringMap(c.aux_addresses, at(p, 'aux_addresses'));
      }
    }
  }
  if (out.external && (o.ipam !== undefined || o.driver !== undefined || o.attachable !== undefined || o.driver_opts !== undefined || o.labels !== undefined || o.internal !== undefined || o[DEFAULT_DENY_KEY] !== undefined || o.enable_ipv6 !== undefined)) {
    fail(path, 'an external network takes only `name` (it already exists)');
  }
  return out;
}

/** A mapping of strings (numbers and booleans written unquoted become their text, as Compose does). */
function stringMap(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(asObj(v, path))) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') fail(at(path, k), `must be a string, got ${describe(x)}`);
    out[k] = String(x);
  }
  return out;
}

function cidr(v: unknown, path: string): string {
  const s = asString(v, path);
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) > 32) fail(path, `${JSON.stringify(s)} is not an IPv4 CIDR like 10.10.0.0/24`);
  return s;
}
