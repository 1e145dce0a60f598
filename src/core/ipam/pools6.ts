/**
 * IPv6 subnets and task addresses of dual-stack overlay networks (issue #19 item 2), next to the
 * IPv4 pools in pools.ts and with the same rules where they make sense.
 *
 * Sizes: a network's IPv6 subnet is at most a /64 (a larger one is refused: a /64 is what one
 * link gets, RFC 4291 §2.5.1; nothing gains from more) and at least a /124 (16 addresses: the
 * subnet-router anycast `::0` and the gateway are reserved, 14 tasks). There is no broadcast
 * address in IPv6, so the last address is assignable.
 *
 * `--ipv6` without an IPv6 subnet gets the next free /64 of meshd's ULA pool (docker ≥ 27 does the
 * same from its default pools): users should not have to invent a prefix to get dual stack. The
 * pool is one fixed /48 (`fd6d:6573:6864::/48`, "mesd" in ASCII) instead of a random RFC 4193
 * global id because the manager's IPAM is pure and the single allocator of the cluster; overlay
 * prefixes are never routed outside the cluster (no egress), so a clash with another site's ULA
 * cannot happen through meshd.
 */
import { MeshError } from '../errors.js';
import {
  type Cidr6, cidr6Contains, cidrs6Overlap, formatCidr6, formatIp6, last6Of, parseCidr6, parseIp6, size6Of,
} from './addr6.js';

/** Largest IPv6 subnet a network may have (prefix length). */
export const MIN_SUBNET6_PREFIX = 64;
/** Smallest: /124 = 16 addresses (anycast, gateway, 14 tasks). */
export const MAX_SUBNET6_PREFIX = 124;
/** Where automatic /64s come from (see the file comment). */
export const DEFAULT_POOL6 = 'fd6d:6573:6864::/48';

/** Checks an explicit IPv6 subnet's size; returns it parsed. */
export function checkSubnet6(s: string): Cidr6 {
  const c = parseCidr6(s);
  if (c.prefix < MIN_SUBNET6_PREFIX) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 subnet ${s} is larger than a /${MIN_SUBNET6_PREFIX}: use a /${MIN_SUBNET6_PREFIX} (one link's prefix) or smaller`, { field: 'subnet' });
  }
  if (c.prefix > MAX_SUBNET6_PREFIX) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 subnet ${s} is too small: at least a /${MAX_SUBNET6_PREFIX} (anycast, gateway and 14 tasks) is required`, { field: 'subnet' });
  }
  return c;
}

/** IPv6 subnets held by networks: explicit ones checked for overlap, automatic /64s from the ULA pool. */
export class SubnetPool6 {
  private readonly pool: Cidr6;
  private readonly held = new Map<string, Cidr6>();

  constructor(pool: string = DEFAULT_POOL6) {
    this.pool = parseCidr6(pool);
    if (this.pool.prefix > MIN_SUBNET6_PREFIX) throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 pool ${pool} must be a /${MIN_SUBNET6_PREFIX} or larger`);
  }

  get(owner: string): string | undefined {
    const c = this.held.get(owner);
    return c ? formatCidr6(c) : undefined;
  }

  allocate(owner: string, requested?: string): string {
    if (this.held.has(owner)) throw new MeshError('MESHD_BAD_ARGUMENT', `${owner} already holds IPv6 subnet ${this.get(owner)}`);
    if (requested !== undefined) {
      const c = checkSubnet6(requested);
      const clash = this.overlapping(c);
      if (clash) throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 subnet ${requested} overlaps ${formatCidr6(clash[1])} held by ${clash[0]}`, { field: 'subnet' });
      this.held.set(owner, c);
      return formatCidr6(c);
    }
    const step = size6Of(MIN_SUBNET6_PREFIX);
    const count = size6Of(this.pool.prefix) / step;
    // Each held subnet blocks at most one /64 of the pool: held.size + 1 candidates always suffice.
    const tries = count < BigInt(this.held.size + 1) ? count : BigInt(this.held.size + 1);
    for (let i = 0n; i < tries; i++) {
      const cand: Cidr6 = { base: this.pool.base + i * step, prefix: MIN_SUBNET6_PREFIX };
      if (!this.overlapping(cand)) {
        this.held.set(owner, cand);
        return formatCidr6(cand);
      }
    }
    throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 pool ${formatCidr6(this.pool)} exhausted (${this.held.size} held): pass an explicit IPv6 --subnet`, { field: 'subnet' });
  }

  release(owner: string): boolean {
    return this.held.delete(owner);
  }

  private overlapping(c: Cidr6): [string, Cidr6] | undefined {
    for (const [owner, h] of this.held) if (cidrs6Overlap(c, h)) return [owner, h];
    return undefined;
  }
}

/**
 * Task addresses inside one IPv6 subnet: never `::0` (subnet-router anycast) nor the gateway
 * (`::1` by default). Like AddressPool it cycles from the last address handed out, so a
 * released address is not reused at once. A scan from the cursor meets at most `used.size`
 * held addresses plus the two reserved ones before a free one, so allocation is O(held) even in
 * a /64; exhaustion is only reachable (and tested) in small subnets.
 */
export class AddressPool6 {
  readonly subnet: string;
  readonly gateway: string;
  readonly prefix: number;
  private readonly cidr: Cidr6;
  private readonly gw: bigint;
  private readonly used = new Map<bigint, string>();
  private cursor: bigint;

  constructor(subnet: string, gateway?: string) {
    this.cidr = checkSubnet6(subnet);
    this.subnet = formatCidr6(this.cidr);
    this.prefix = this.cidr.prefix;
    this.gw = gateway === undefined ? this.cidr.base + 1n : parseIp6(gateway);
    if (!cidr6Contains(this.cidr, this.gw) || this.gw === this.cidr.base) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 gateway ${gateway} is not a usable address of ${this.subnet}`, { field: 'gateway' });
    }
    this.gateway = formatIp6(this.gw);
    this.cursor = this.cidr.base;
  }

  /** Assignable addresses in total (size minus anycast and gateway), as a BigInt. */
  get capacity(): bigint {
    return size6Of(this.prefix) - 2n;
  }

  /** Free addresses (BigInt: a /64 has 2^64 − 2). */
  get free(): bigint {
    return this.capacity - BigInt(this.used.size);
  }

  allocate(owner: string, requested?: string): string {
    if (requested !== undefined) {
      const n = parseIp6(requested);
      if (!this.assignable(n)) throw new MeshError('MESHD_BAD_ARGUMENT', `address ${requested} is not assignable in ${this.subnet} (outside, anycast or gateway)`);
      const by = this.used.get(n);
      if (by !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `address ${requested} already held by ${by}`);
      this.used.set(n, owner);
      return formatIp6(n);
    }
    const size = size6Of(this.prefix);
    const span = BigInt(this.used.size + 3);
    const tries = size < span ? size : span;
    for (let k = 1n; k <= tries; k++) {
      const n = this.cidr.base + ((this.cursor - this.cidr.base + k) % size);
      if (this.assignable(n) && !this.used.has(n)) {
        this.used.set(n, owner);
        this.cursor = n;
        return formatIp6(n);
      }
    }
    throw new MeshError('MESHD_BAD_ARGUMENT', `IPv6 subnet ${this.subnet} exhausted: all ${this.capacity} task addresses are in use`);
  }

  release(ip: string): boolean {
    return this.used.delete(parseIp6(ip));
  }

  owner(ip: string): string | undefined {
    return this.used.get(parseIp6(ip));
  }

  private assignable(n: bigint): boolean {
    return cidr6Contains(this.cidr, n) && n !== this.cidr.base && n !== this.gw && n <= last6Of(this.cidr);
  }
}
