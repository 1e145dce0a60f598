/**
 * Network-level IPAM for the manager: one call validates everything (name, subnet,
 * gateway, VNI, MTU) before it commits anything, so a bad request leaves nothing
 * half-made (no subnet or VNI held by a network that does not exist).
 */
import { MeshError } from '../errors.js';
import { AddressPool, type PoolSpec, SubnetPool, VniAllocator } from './pools.js';
import { AddressPool6, SubnetPool6 } from './pools6.js';

export interface NetworkRequest {
  name: string;
  subnet?: string;
  gateway?: string;
  vni?: number;
  /** Overlay MTU; default: agent computes underlay MTU − 50. */
  mtu?: number;
  attachable?: boolean;
  /** Docker's --ip-range: dynamic addresses only from this CIDR inside the subnet. */
  ipRange?: string | undefined;
  /** Docker's --aux-address name=IP: reserved, never handed out. */
  auxAddresses?: Readonly<Record<string, string>> | undefined;
  /**
   * Dual stack (issue #19 item 2, docker's `--ipv6`): the network also gets an IPv6 subnet —
   * `subnet6` when given, else the next free /64 of the ULA pool (pools6.ts says why).
   */
  ipv6?: boolean | undefined;
  /** Explicit IPv6 subnet (/64 … /124); needs `ipv6`. */
  subnet6?: string | undefined;
  /** IPv6 gateway (default `::1` of subnet6); a stored network's, when it is rebuilt. */
  gateway6?: string | undefined;
}

export interface NetworkAllocation {
  name: string;
  subnet: string;
  gateway: string;
  vni: number;
  mtu?: number;
  attachable: boolean;
  ipRange?: string;
  auxAddresses?: Record<string, string>;
  /** Present only on dual-stack networks (both or neither). */
  subnet6?: string;
  gateway6?: string;
}

/** Docker-compatible-ish network names: start alnum, then alnum . _ -, at most 64. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function validateNetworkName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid network name ${JSON.stringify(name)}: 1-64 characters [A-Za-z0-9_.-], starting with a letter or digit`);
  }
}

/** Smallest MTU that still carries IPv4 (RFC 791 minimum 68; Linux min for a bridge). */
export const MIN_MTU = 68;
export const MAX_MTU = 65_535;

export class NetworkIpam {
  private readonly subnets: SubnetPool;
  private readonly vnis = new VniAllocator();
  private readonly subnets6: SubnetPool6;
  private readonly nets = new Map<string, { alloc: NetworkAllocation; addrs: AddressPool; addrs6: AddressPool6 | undefined }>();

  constructor(pools?: readonly PoolSpec[], pool6?: string) {
    this.subnets = new SubnetPool(pools);
    this.subnets6 = new SubnetPool6(pool6);
  }

  create(req: NetworkRequest): NetworkAllocation {
    validateNetworkName(req.name);
    if (this.nets.has(req.name)) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${req.name} already exists`);
    if (req.mtu !== undefined && (!Number.isInteger(req.mtu) || req.mtu < MIN_MTU || req.mtu > MAX_MTU)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `invalid MTU ${req.mtu}: must be an integer ${MIN_MTU}..${MAX_MTU}`);
    }
    if (req.gateway !== undefined && req.subnet === undefined) {
      throw new MeshError('MESHD_BAD_ARGUMENT', '--gateway needs --subnet');
    }
    if ((req.ipRange !== undefined || (req.auxAddresses && Object.keys(req.auxAddresses).length)) && req.subnet === undefined) {
      throw new MeshError('MESHD_BAD_ARGUMENT', '--ip-range and --aux-address need --subnet (they must lie inside it)');
    }
    if (!req.ipv6 && (req.subnet6 !== undefined || req.gateway6 !== undefined)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', 'an IPv6 subnet needs --ipv6 (docker\'s flag for a dual-stack network)', { field: 'ipv6' });
    }
    const subnet = this.subnets.allocate(req.name, req.subnet);
    let vni: number | undefined;
    let held6 = false;
    try {
      const addrs = new AddressPool(subnet, req.gateway, { ipRange: req.ipRange, auxAddresses: req.auxAddresses });
      let addrs6: AddressPool6 | undefined;
      if (req.ipv6) {
        const subnet6 = this.subnets6.allocate(req.name, req.subnet6);
        held6 = true;
        addrs6 = new AddressPool6(subnet6, req.gateway6);
      }
      vni = this.vnis.allocate(req.vni);
      const alloc: NetworkAllocation = {
        name: req.name, subnet, gateway: addrs.gateway, vni, attachable: req.attachable ?? false,
        ...(req.mtu !== undefined ? { mtu: req.mtu } : {}),
        ...(addrs.ipRange !== undefined ? { ipRange: addrs.ipRange } : {}),
        ...(Object.keys(addrs.auxAddresses).length ? { auxAddresses: { ...addrs.auxAddresses } } : {}),
        ...(addrs6 ? { subnet6: addrs6.subnet, gateway6: addrs6.gateway } : {}),
      };
      this.nets.set(req.name, { alloc, addrs, addrs6 });
      return alloc;
    } catch (e) {
      this.subnets.release(req.name);
      if (held6) this.subnets6.release(req.name);
      if (vni !== undefined) this.vnis.release(vni);
      throw e;
    }
  }

  remove(name: string): void {
    const n = this.nets.get(name);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${name}`);
    this.subnets.release(name);
    this.subnets6.release(name);
    this.vnis.release(n.alloc.vni);
    this.nets.delete(name);
  }

  get(name: string): NetworkAllocation | undefined {
    return this.nets.get(name)?.alloc;
  }

  list(): NetworkAllocation[] {
    return [...this.nets.values()].map((n) => n.alloc).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Allocates a task or VIP address on a network. */
  allocateAddress(network: string, owner: string, requested?: string): string {
    return this.pool(network).allocate(owner, requested);
  }

  releaseAddress(network: string, ip: string): boolean {
    return this.pool(network).release(ip);
  }

  /** Whether a network is dual stack (has an IPv6 subnet). */
  hasIpv6(network: string): boolean {
    return this.entry(network).addrs6 !== undefined;
  }

  /** Allocates a task's IPv6 address on a dual-stack network (MESHD_BAD_ARGUMENT on an IPv4-only one). */
  allocateAddress6(network: string, owner: string, requested?: string): string {
    const p = this.entry(network).addrs6;
    if (!p) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${network} has no IPv6 subnet`);
    return p.allocate(owner, requested);
  }

  releaseAddress6(network: string, ip: string): boolean {
    return this.entry(network).addrs6?.release(ip) ?? false;
  }

  private entry(network: string): { addrs: AddressPool; addrs6: AddressPool6 | undefined } {
    const n = this.nets.get(network);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${network}`);
    return n;
  }

  private pool(network: string): AddressPool {
    const n = this.nets.get(network);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${network}`);
    return n.addrs;
  }
}
