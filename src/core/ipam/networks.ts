/**
 * Network-level IPAM for the manager: one call validates everything (name, subnet,
 * gateway, VNI, MTU) before it commits anything, so a bad request leaves nothing
 * half-made (no subnet or VNI held by a network that does not exist).
 */
import { MeshError } from '../errors.js';
import { AddressPool, type PoolSpec, SubnetPool, VniAllocator } from './pools.js';

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
  private readonly nets = new Map<string, { alloc: NetworkAllocation; addrs: AddressPool }>();

  constructor(pools?: readonly PoolSpec[]) {
    this.subnets = new SubnetPool(pools);
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
    const subnet = this.subnets.allocate(req.name, req.subnet);
    let vni: number | undefined;
    try {
      const addrs = new AddressPool(subnet, req.gateway, { ipRange: req.ipRange, auxAddresses: req.auxAddresses });
      vni = this.vnis.allocate(req.vni);
      const alloc: NetworkAllocation = {
        name: req.name, subnet, gateway: addrs.gateway, vni, attachable: req.attachable ?? false,
        ...(req.mtu !== undefined ? { mtu: req.mtu } : {}),
        ...(addrs.ipRange !== undefined ? { ipRange: addrs.ipRange } : {}),
        ...(Object.keys(addrs.auxAddresses).length ? { auxAddresses: { ...addrs.auxAddresses } } : {}),
      };
      this.nets.set(req.name, { alloc, addrs });
      return alloc;
    } catch (e) {
      this.subnets.release(req.name);
      if (vni !== undefined) this.vnis.release(vni);
      throw e;
    }
  }

  remove(name: string): void {
    const n = this.nets.get(name);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${name}`);
    this.subnets.release(name);
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

  private pool(network: string): AddressPool {
    const n = this.nets.get(network);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `no such network: ${network}`);
    return n.addrs;
  }
}
