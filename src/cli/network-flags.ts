/**
 * `netctl network create` flags → the API body, with docker's spellings: `-d overlay|macvlan`,
 * `--ip-range`, `--aux-address name=IP` and `--label k[=v]` and `-o k=v` (repeatable),
 * `--internal`, and dual stack as docker spells it: `--ipv6` plus a second `--subnet` holding the
 * IPv6 prefix (`--subnet` is repeatable: at most one of each family). Pure, so the parse is unit-tested; the manager checks meaning (driver options,
 * addresses inside the subnet) and answers with the stable codes.
 */
import { MeshError } from '../core/errors.js';
import { looksV6 } from '../core/ipam/addr6.js';
import { parseKv } from './node-commands.js';

export interface NetworkCreateFlags {
  driver: string;
  /** Repeatable: one IPv4 and (with --ipv6) one IPv6 subnet. */
  subnet?: string | string[];
  ipv6?: boolean;
  gateway?: string;
  mtu?: string;
  attachable?: boolean;
  ipRange?: string;
  auxAddress?: string[];
  internal?: boolean;
  label?: string[];
  opt?: string[];
  /** Issue #19: tasks on the network accept connections only from their service's --allow-from. */
  defaultDeny?: boolean;
}

/** `name=IP` pairs; unlike a label, an aux address needs both halves, and a name only once. */
function parseAux(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list) {
    const i = s.indexOf('=');
    if (i <= 0 || i === s.length - 1) throw new MeshError('MESHD_BAD_ARGUMENT', `--aux-address: expected name=IP, got ${JSON.stringify(s)}`);
    const k = s.slice(0, i);
    if (Object.hasOwn(out, k)) throw new MeshError('MESHD_BAD_ARGUMENT', `--aux-address: name ${JSON.stringify(k)} given twice`);
    out[k] = s.slice(i + 1);
  }
  return out;
}

/** `-o k=v`: docker's driver options; a bare key is refused (no option here is a boolean). */
function parseOpts(list: readonly string[]): Record<string, string> {
  for (const s of list) if (s.indexOf('=') <= 0) throw new MeshError('MESHD_BAD_ARGUMENT', `--opt: expected KEY=VALUE, got ${JSON.stringify(s)}`);
  return parseKv([...list], '--opt');
}

/** Splits `--subnet` values by family (a colon = IPv6); two of one family is refused, never one dropped. */
function splitSubnets(list: readonly string[]): { subnet?: string; subnet6?: string } {
  const v4 = list.filter((s) => !looksV6(s));
  const v6 = list.filter((s) => looksV6(s));
  if (v4.length > 1 || v6.length > 1) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `--subnet: at most one IPv4 and one IPv6 subnet per network, got ${list.join(', ')}`, { field: 'subnet' });
  }
  return { ...(v4[0] !== undefined ? { subnet: v4[0] } : {}), ...(v6[0] !== undefined ? { subnet6: v6[0] } : {}) };
}

export function networkCreateBody(name: string, o: NetworkCreateFlags): Record<string, unknown> {
  const mtu = o.mtu === undefined ? undefined : Number(o.mtu);
  if (mtu !== undefined && !Number.isInteger(mtu)) throw new MeshError('MESHD_BAD_ARGUMENT', `--mtu must be an integer, got ${JSON.stringify(o.mtu)}`);
  const aux = parseAux(o.auxAddress ?? []);
  const labels = parseKv(o.label, '--label');
  const options = parseOpts(o.opt ?? []);
  const subnets = splitSubnets(typeof o.subnet === 'string' ? [o.subnet] : o.subnet ?? []);
  if (o.gateway !== undefined && looksV6(o.gateway)) {
    throw new MeshError('MESHD_UNSUPPORTED', `--gateway ${o.gateway}: an IPv6 gateway cannot be chosen (it is the subnet's ::1)`, { field: 'gateway' });
  }
  return {
    name, driver: o.driver, attachable: o.attachable === true, internal: o.internal === true,
    ...subnets, ...(o.ipv6 ? { ipv6: true } : {}), ...(o.gateway !== undefined ? { gateway: o.gateway } : {}),
    ...(mtu !== undefined ? { mtu } : {}), ...(o.ipRange !== undefined ? { ipRange: o.ipRange } : {}),
    ...(Object.keys(aux).length ? { auxAddresses: aux } : {}), ...(Object.keys(labels).length ? { labels } : {}),
    ...(Object.keys(options).length ? { options } : {}),
    ...(o.defaultDeny ? { defaultDeny: true } : {}),
  };
}
