/**
 * A node's client of a cluster with several managers (swarm agents keep the manager list
 * and reconnect to another one). Requests go to the current manager; when it cannot be
 * reached the next known one is tried, and a follower's "not the leader" answer (503
 * MESHD_NOT_LEADER, see Manager) sends the request on to the leader
 * it names. The manager that answered becomes the current one, so a node ends up talking
 * to the leader and stays there until it fails.
 *
 * The list comes from the join (the manager joined through) and is refreshed by the
 * caller from `GET /v1/managers`; an address a redirect names is added to it.
 */
import { MeshError, toMeshError } from '../core/errors.js';
import { ManagerClient, responseError, type CallOptions, type RawResponse, type TlsCredentials } from './client.js';
import { notLeaderTarget } from '../api/not-leader.js';

export { notLeaderHint, notLeaderTarget } from '../api/not-leader.js';

/** Whether `e` means "this manager cannot serve now, another one may". */
export function isFailover(e: unknown): boolean {
  if (notLeaderTarget(e)) return true;
  return e instanceof MeshError && (e.code === 'MESHD_MANAGER_UNREACHABLE' || e.code === 'MESHD_STORE_UNAVAILABLE');
}

/**
 * Where to go after `failed` refused or failed with `e` (pure): the named leader unless it
 * is the one that just failed, else the first address not tried yet; undefined: give up.
 */
export function nextManager(addrs: readonly string[], tried: ReadonlySet<string>, failed: string, e: unknown): string | undefined {
  if (!isFailover(e)) return undefined;
  const nl = notLeaderTarget(e);
  if (nl?.leader && nl.leader !== failed && !tried.has(nl.leader)) return nl.leader;
  return addrs.find((a) => !tried.has(a));
}

export interface ManagerPoolOptions {
  timeoutMs?: number;
  /** Told when the current manager changes (for the log). */
  onSwitch?: (from: string, to: string, why: string) => void;
}

export class ManagerPool {
  private addrs: string[];
  private cur: string;
  private clients = new Map<string, ManagerClient>();

  constructor(private creds: Required<TlsCredentials>, addrs: readonly string[], private readonly o: ManagerPoolOptions = {}) {
    if (!addrs.length) throw new MeshError('MESHD_BAD_ARGUMENT', 'a manager pool needs at least one manager address');
    this.addrs = [...new Set(addrs)];
    this.cur = this.addrs[0]!;
  }

  get current(): string {
    return this.cur;
  }

  addresses(): string[] {
    return [...this.addrs];
  }

  /** Replaces the known managers (order: preference); the current one stays if still listed. */
  setAddresses(list: readonly string[]): void {
    const next = [...new Set(list)];
    if (!next.length) return;
    this.addrs = next;
    if (!next.includes(this.cur)) this.cur = next[0]!;
    for (const [a, c] of [...this.clients]) {
      if (next.includes(a)) continue;
      c.close();
      this.clients.delete(a);
    }
  }

  /** New certificate (after renewal): clients are rebuilt. */
  setCredentials(creds: Required<TlsCredentials>): void {
    this.creds = creds;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  client(addr = this.cur): ManagerClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new ManagerClient(addr, this.creds, this.o.timeoutMs ?? 10_000);
      this.clients.set(addr, c);
    }
    return c;
  }

  /** Runs `op` against the current manager, failing over / following the leader as needed. */
  async run<T>(op: (c: ManagerClient) => Promise<T>): Promise<T> {
    const tried = new Set<string>();
    for (;;) {
      const addr = this.cur;
      tried.add(addr);
      try {
        return await op(this.client(addr));
      } catch (e) {
        const next = nextManager(this.addrs, tried, addr, e);
        if (next === undefined) throw e;
        if (!this.addrs.includes(next)) this.addrs.push(next);
        this.cur = next;
        this.o.onSwitch?.(addr, next, toMeshError(e).message);
      }
    }
  }

  call<T = unknown>(method: string, path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    return this.run((c) => c.call<T>(method, path, body, opts));
  }

  /** The raw answer of whichever manager served the request (a redirect is followed, not returned). */
  raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    return this.run(async (c) => {
      const r = await c.raw(method, path, body);
      if (r.status === 503) {
        const e = responseError(r);
        if (isFailover(e)) throw e;
      }
      return r;
    });
  }
}
