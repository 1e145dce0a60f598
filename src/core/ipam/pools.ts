/**
 * Allocators for overlay networks: subnets from configurable pools, VXLAN network
 * identifiers, and addresses (gateway, tasks, VIPs) inside one subnet. Pure and
 * deterministic (first fit, lowest first), so the manager's decisions replay exactly.
 *
 * Errors are MeshError MESHD_BAD_ARGUMENT with messages that name the pool and the
 * reason: Docker's "could not find an available, non-overlapping IPv4 address pool"
 * without naming the pool is the top complaint we fix here.
 */
import { MeshError } from '../errors.js';
import {
  type Cidr, cidrContains, cidrsOverlap, formatCidr, formatIp, lastOf, parseCidr, parseIp, sizeOf,
} from './addr.js';

/** A pool subnets are carved from, e.g. { cidr: '10.0.0.0/8', size: 24 }. */
export interface PoolSpec {
  cidr: string;
  /** Prefix length of each allocated subnet (default 24). */
  size?: number;
}

/** Smallest usable overlay subnet: /29 = 8 addresses = network, gateway, broadcast + 5 tasks. */
export const MAX_SUBNET_PREFIX = 29;
export const DEFAULT_POOLS: readonly PoolSpec[] = [{ cidr: '10.0.0.0/8', size: 24 }];

/** VXLAN VNIs we hand out: below 4096 left for 802.1Q-style manual use (as Docker does). */
export const VNI_MIN = 4096;
export const VNI_MAX = 16_777_215;

interface Pool {
  cidr: Cidr;
  size: number;
  name: string;
}

/** Subnet allocation from pools plus explicit subnets, with overlap checks against everything held. */
export class SubnetPool {
  private readonly pools: Pool[];
  /** owner → subnet */
  private readonly held = new Map<string, Cidr>();

  constructor(pools: readonly PoolSpec[] = DEFAULT_POOLS) {
    if (pools.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'at least one address pool is required');
    this.pools = pools.map((p) => {
      const cidr = parseCidr(p.cidr);
      const size = p.size ?? 24;
      if (!Number.isInteger(size) || size < cidr.prefix || size > MAX_SUBNET_PREFIX) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `pool ${p.cidr}: subnet size /${size} must be between /${cidr.prefix} and /${MAX_SUBNET_PREFIX}`);
      }
      return { cidr, size, name: `${p.cidr} (/${size} subnets)` };
    });
  }

  /** Subnet held by an owner, as a string, or undefined. */
  get(owner: string): string | undefined {
    const c = this.held.get(owner);
    return c ? formatCidr(c) : undefined;
  }

  /**
   * Allocates a subnet for `owner`. With `requested`, validates it (CIDR, not too small,
   * no overlap); otherwise first fit from the pools in order. Throws, holding nothing, on error.
   */
  allocate(owner: string, requested?: string): string {
    if (this.held.has(owner)) throw new MeshError('MESHD_BAD_ARGUMENT', `${owner} already holds subnet ${this.get(owner)}`);
    if (requested !== undefined) {
      const c = parseCidr(requested);
      if (c.prefix > MAX_SUBNET_PREFIX) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `subnet ${requested} is too small: at least /${MAX_SUBNET_PREFIX} (network, gateway, broadcast and 5 tasks) is required`);
      }
      const clash = this.overlapping(c);
      if (clash) throw new MeshError('MESHD_BAD_ARGUMENT', `subnet ${requested} overlaps ${formatCidr(clash[1])} held by ${clash[0]}`);
      this.held.set(owner, c);
      return formatCidr(c);
    }
    for (const p of this.pools) {
      const step = sizeOf(p.size);
      const count = sizeOf(p.cidr.prefix) / step;
      for (let i = 0; i < count; i++) {
        const cand: Cidr = { base: (p.cidr.base + i * step) >>> 0, prefix: p.size };
        const clash = this.overlapping(cand);
        if (!clash) {
          this.held.set(owner, cand);
          return formatCidr(cand);
        }
        // Skip past a larger held block in one step (keeps a /8 pool scan cheap).
        const end = lastOf(clash[1]);
        if (end > lastOf(cand)) i = Math.floor((end + 1 - p.cidr.base) / step) - 1;
      }
    }
    throw new MeshError('MESHD_BAD_ARGUMENT',
      `address pool exhausted: no free subnet left in ${this.pools.map((p) => p.name).join(', ')} (${this.held.size} held); ` +
      'pass an explicit --subnet or configure a larger pool');
  }

  release(owner: string): boolean {
    return this.held.delete(owner);
  }

  private overlapping(c: Cidr): [string, Cidr] | undefined {
    for (const [owner, h] of this.held) if (cidrsOverlap(c, h)) return [owner, h];
    return undefined;
  }
}

/** VNI allocation in [VNI_MIN, VNI_MAX], lowest free first. */
export class VniAllocator {
  private readonly used = new Set<number>();
  private next = VNI_MIN;

  allocate(requested?: number): number {
    if (requested !== undefined) {
      if (!Number.isInteger(requested) || requested < VNI_MIN || requested > VNI_MAX) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `VNI ${requested} out of range ${VNI_MIN}..${VNI_MAX}`);
      }
      if (this.used.has(requested)) throw new MeshError('MESHD_BAD_ARGUMENT', `VNI ${requested} already in use`);
      this.used.add(requested);
      return requested;
    }
    const span = VNI_MAX - VNI_MIN + 1;
    for (let k = 0; k < span; k++) {
      const v = VNI_MIN + ((this.next - VNI_MIN + k) % span);
      if (!this.used.has(v)) {
        this.used.add(v);
        this.next = v === VNI_MAX ? VNI_MIN : v + 1;
        return v;
      }
    }
    throw new MeshError('MESHD_BAD_ARGUMENT', `VNI pool ${VNI_MIN}..${VNI_MAX} exhausted`);
  }

  release(vni: number): boolean {
    return this.used.delete(vni);
  }
}

/** Docker's `--ip-range` and `--aux-address`: where dynamic addresses come from, and which never go out. */
export interface AddressPoolOptions {
  /** CIDR inside the subnet: addresses handed out without a request come only from here. */
  ipRange?: string | undefined;
  /** name → address inside the subnet that IPAM never hands out (reserved for hosts outside meshd). */
  auxAddresses?: Readonly<Record<string, string>> | undefined;
}

/** Name of an aux address (docker takes any; we keep it printable and short). */
const AUX_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Addresses inside one subnet: never the network or broadcast address, never the
 * gateway, never an aux address; dynamic ones only inside the ip-range (whole subnet by
 * default). Allocation cycles from the last allocated address (so a released task IP is
 * not reused at once; stale neighbour entries elsewhere then cannot misdirect traffic).
 * A requested address (a record restored from the store) may lie outside the ip-range,
 * as docker's static addresses may, but never on a reserved one.
 */
export class AddressPool {
  readonly subnet: string;
  readonly gateway: string;
  readonly prefix: number;
  /** The dynamic range as given (normalized), or undefined for the whole subnet. */
  readonly ipRange: string | undefined;
  readonly auxAddresses: Readonly<Record<string, string>>;
  private readonly cidr: Cidr;
  private readonly range: Cidr;
  private readonly gw: number;
  private readonly aux = new Map<number, string>();
  private readonly used = new Map<number, string>();
  private cursor: number;

  constructor(subnet: string, gateway?: string, opts: AddressPoolOptions = {}) {
    this.cidr = parseCidr(subnet);
    if (this.cidr.prefix > MAX_SUBNET_PREFIX) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `subnet ${subnet} is too small: at least /${MAX_SUBNET_PREFIX} is required`);
    }
    this.subnet = formatCidr(this.cidr);
    this.prefix = this.cidr.prefix;
    this.gw = gateway === undefined ? this.cidr.base + 1 : parseIp(gateway);
    if (!this.usable(this.gw)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `gateway ${gateway} is not a usable address of ${this.subnet}`);
    }
    this.gateway = formatIp(this.gw);
    if (opts.ipRange !== undefined) {
      const r = parseCidr(opts.ipRange);
      if (r.prefix < this.cidr.prefix || !cidrContains(this.cidr, r.base)) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `ip-range ${opts.ipRange} is not inside subnet ${this.subnet}`, { field: 'ipRange' });
      }
      this.range = r;
      this.ipRange = formatCidr(r);
    } else {
      this.range = this.cidr;
      this.ipRange = undefined;
    }
    const auxOut: Record<string, string> = {};
    for (const [name, ip] of Object.entries(opts.auxAddresses ?? {})) {
      if (!AUX_NAME.test(name)) throw new MeshError('MESHD_BAD_ARGUMENT', `aux-address name ${JSON.stringify(name)}: 1-64 characters [A-Za-z0-9_.-]`, { field: 'auxAddresses' });
      const n = parseIp(ip);
      if (!this.usable(n)) throw new MeshError('MESHD_BAD_ARGUMENT', `aux-address ${name}=${ip} is not a usable address of ${this.subnet}`, { field: 'auxAddresses' });
      if (n === this.gw) throw new MeshError('MESHD_BAD_ARGUMENT', `aux-address ${name}=${ip} is the gateway`, { field: 'auxAddresses' });
      const by = this.aux.get(n);
      if (by !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `aux-address ${name}=${ip} is already reserved as ${by}`, { field: 'auxAddresses' });
      this.aux.set(n, name);
      auxOut[name] = formatIp(n);
    }
    this.auxAddresses = auxOut;
    if (this.dynamicCapacity() === 0) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `no assignable address left in ${this.ipRange ?? this.subnet} (network, broadcast, gateway and aux addresses excluded)`, { field: 'ipRange' });
    }
    this.cursor = this.range.base;
  }

  /** Number of dynamic (ip-range) addresses still free. */
  get free(): number {
    let held = 0;
    for (const n of this.used.keys()) if (this.assignable(n)) held++;
    return this.dynamicCapacity() - held;
  }

  /** Allocates an address for `owner` (a task or VIP id); `requested` pins it. */
  allocate(owner: string, requested?: string): string {
    if (requested !== undefined) {
      const n = parseIp(requested);
      if (!this.usable(n) || n === this.gw) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `address ${requested} is not assignable in ${this.subnet} (network, broadcast or gateway)`);
      }
      const aux = this.aux.get(n);
      if (aux !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `address ${requested} is reserved as aux-address ${aux}`);
      const by = this.used.get(n);
      if (by !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `address ${requested} already held by ${by}`);
      this.used.set(n, owner);
      return requested;
    }
    const size = sizeOf(this.range.prefix);
    for (let k = 1; k <= size; k++) {
      const n = (this.range.base + ((this.cursor - this.range.base + k) % size)) >>> 0;
      if (this.assignable(n) && !this.used.has(n)) {
        this.used.set(n, owner);
        this.cursor = n;
        return formatIp(n);
      }
    }
    throw new MeshError('MESHD_BAD_ARGUMENT', this.ipRange === undefined && this.aux.size === 0
      ? `subnet ${this.subnet} exhausted: all ${this.dynamicCapacity()} task addresses are in use`
      : `${this.ipRange ? `ip-range ${this.ipRange} of ` : ''}subnet ${this.subnet} exhausted: all ${this.dynamicCapacity()} assignable addresses are in use`);
  }

  release(ip: string): boolean {
    return this.used.delete(parseIp(ip));
  }

  owner(ip: string): string | undefined {
    return this.used.get(parseIp(ip));
  }

  private usable(n: number): boolean {
    return cidrContains(this.cidr, n) && n !== this.cidr.base && n !== lastOf(this.cidr);
  }

  /** A dynamic candidate: in the range, usable, not the gateway, not reserved. */
  private assignable(n: number): boolean {
    return cidrContains(this.range, n) && this.usable(n) && n !== this.gw && !this.aux.has(n);
  }

  private dynamicCapacity(): number {
    let reserved = 0;
    const first = this.range.base;
    const last = lastOf(this.range);
    for (const n of [this.cidr.base, lastOf(this.cidr), this.gw, ...this.aux.keys()]) if (n >= first && n <= last) reserved++;
    // gateway / network / broadcast can coincide only when distinct checks above failed; counted once each.
    return sizeOf(this.range.prefix) - reserved;
  }
}
