/**
 * The LB's routing-mesh side on one node (lb.ts keeps planning and applying): the persisted
 * ingress configuration (`lb-ingress.json`: the node's ingress address and per-task
 * attachments), joining `ingress` (gossip + overlay sandbox), plumbing the ingress sandbox and
 * task attachments (lb-ingress.ts), publishing their records, the host namespace's DNAT table,
 * and what the `/v1/ingress` routes (routes.ts) change.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../adapters/fs/atomic.js';
import { INGRESS_NETWORK, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import type { IngressPublish } from '../../core/lb/model.js';
import { IngressPlumber, type IngressAddr } from './ingress.js';
import { IngressRecords } from './ingress-records.js';
import { HOST_LINK, HOST_NFT_TABLE, hostTableFamilies, INGRESS_NET, INGRESS_NET6, ingress6Of, parseIngressAddr, renderHostIngress, sboxRecord } from './plan.js';
import { dnatPortsOf, ProxyPorts, proxyPortsOf } from './proxy-ports.js';
import type { LbState } from './state.js';
import type { LbSubsystemOptions, Persisted } from './types.js';

export class IngressSide {
  readonly plumber: IngressPlumber;
  /** Published ports with a PROXY protocol header: served by listeners of this process (proxy-ports.ts). */
  readonly proxies: ProxyPorts;
  /** This node's records on `ingress`, JSON or compact as the gate allows (ingress-records.ts). */
  private readonly records: IngressRecords;
  private cfg: Persisted = { node: null, tasks: {} };
  private plumbed = false;
  /** Plumbed once since start (the overlay had created its `ingress` sandbox by then). */
  private everPlumbed = false;
  /** Tasks whose ingress attachment was checked since the last periodic check. */
  private readonly attached = new Set<string>();
  private hostRendered: string | null = null;
  /**
   * An ip6 host table is in the kernel (programmed here with IPv6 underlay addresses, or found by
   * `kernelRead`): a later render without IPv6 addresses deletes it.
   */
  private had6 = false;
  /**
   * The kernel's host tables were read since start or the last periodic check. An agent restarted after its
   * node lost its IPv6 underlay addresses does not know it had an ip6 table: read, not remembered. Read only
   * when the render would leave the ip6 table alone (no IPv6 address, none known): a node without IPv6 in
   * its kernel must never get an `ip6` line it would refuse, so the table is not deleted blindly.
   */
  private kernelRead = false;
  /**
   * This node's IPv6 underlay addresses (issue 19 §2): the advertised address on an IPv6-only
   * underlay, else the global IPv6 addresses of the device holding the IPv4 one (dual underlay;
   * read at each plumbing check). Non-empty = the routing mesh is dual stack on this node.
   */
  private underlay6: string[] = [];

  /** `changed()`: the ingress namespace needs a sync (lb.ts marks it dirty). */
  constructor(private readonly o: LbSubsystemOptions, private readonly state: LbState, private readonly netnsOf: (taskId: string) => string, private readonly changed: () => void) {
    this.plumber = new IngressPlumber(o.exec, o.prefix);
    this.records = new IngressRecords(o);
    this.proxies = new ProxyPorts({
      host: o.underlayIp, upstreamHost: HOST_LINK.sboxIp,
      maxConnections: o.proxyProtocol?.maxConnections ?? 4096, idleTimeoutMs: o.proxyProtocol?.idleTimeoutMs ?? 350_000,
    });
  }

  private get file(): string {
    return join(this.o.dataDir, 'lb-ingress.json');
  }

  /** True when this node has an ingress address (routing mesh on). */
  get configured(): boolean {
    return this.cfg.node !== null;
  }

  /** True when task `taskId` asked for an ingress attachment. */
  attaches(taskId: string): boolean {
    return this.cfg.tasks[taskId] !== undefined;
  }

  /** A local task record was created: re-check its attachment. */
  taskCreated(taskId: string): void {
    this.attached.delete(taskId);
  }

  /**
   * Reads the persisted configuration and, if configured, joins `ingress` again. A file that is
   * unreadable or not the shape `save` writes (`null`, a number, an array, a bad `node` / `tasks`:
   * decodeIngressConfig below) is logged once, naming the file, and read as no configuration —
   * never a crash (`null` used to throw out of the agent's start), never half a configuration; the
   * next `PUT /v1/ingress` replaces it (the policy of worker/saved.ts and gossip/member-snapshot.ts).
   */
  load(): void {
    if (existsSync(this.file)) {
      try {
        this.cfg = decodeIngressConfig(readFileSync(this.file, 'utf8'));
      } catch (e) {
        this.cfg = { node: null, tasks: {} };
        this.o.log.error({ err: e, file: this.file }, 'saved ingress configuration unreadable; ingress not configured (replaced on the next write)');
      }
    }
    if (this.cfg.node) this.define(this.cfg.node);
  }

  private save(): void {
    mkdirSync(this.o.dataDir, { recursive: true });
    // 0644: addresses and task ids only, no secret (as before by umask).
    writeFileAtomic(this.file, JSON.stringify(this.cfg), 0o644);
  }

  /** Joins `ingress` (gossip + overlay sandbox held by the ingress sandbox's endpoint). */
  private define(addr: IngressAddr): void {
    this.o.gossip.core.joinNetwork(INGRESS_NETWORK, this.o.clock.now());
    this.records.say();
    this.o.gossip.pump();
    // subnet6: neighbour entries for the derived IPv6 ingress addresses of records that carry one
    // (only nodes with an IPv6 underlay publish them: nothing changes on an IPv4 cluster).
    this.o.overlay.defineNetwork({ ...INGRESS_NET, subnet6: INGRESS_NET6.subnet });
    this.o.overlay.addLocal(this.sboxKey, { network: INGRESS_NETWORK, ip: addr.ip, mac: addr.mac });
    // At once, not after plumbing: peers' overlays wait for our entry on `ingress` before activating.
    this.publishIfChanged(sboxRecord(this.o.nodeName, this.o.underlayIp, addr, this.v6));
  }

  /** True when the routing mesh is dual stack on this node (its underlay has IPv6). */
  get v6(): boolean {
    return this.underlay6.length > 0;
  }

  /**
   * Reads this node's IPv6 underlay addresses (see `underlay6`) and the device that holds the
   * advertised address (null when none does, e.g. an address on `lo` in tests).
   */
  private async readUnderlay6(): Promise<{ addrs: string[]; dev: string | null }> {
    const r = await this.o.exec.run('ip', ['-j', 'addr', 'show']);
    if (r.code !== 0) throw new MeshError('MESHD_NOT_READY', `ip addr show failed: ${r.stderr.trim()}`);
    const links = JSON.parse(r.stdout || '[]') as Array<{ ifname?: string; addr_info?: Array<{ family?: string; local?: string; scope?: string }> }>;
    const dev = links.find((l) => (l.addr_info ?? []).some((a) => a.local === this.o.underlayIp));
    const global6 = (dev?.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope === 'global' && a.local).map((a) => a.local!);
    const addrs = this.o.underlayIp.includes(':') ? [...new Set([this.o.underlayIp, ...global6])] : global6;
    return { addrs: addrs.sort(), dev: dev?.ifname ?? null };
  }

  /**
   * IPv6 forwarding (needed by the IPv6 routing mesh) makes Linux ignore router advertisements
   * on interfaces with `accept_ra=1`: a host whose underlay IPv6 default route comes from RAs
   * would lose it when the route expires. `accept_ra=2` accepts them while forwarding; only a
   * value of 1 (the default) is raised, an operator's 0 or 2 is left alone.
   */
  private async keepRouterAdvertisements(dev: string): Promise<void> {
    const key = `net.ipv6.conf.${dev}.accept_ra`;
    const cur = await this.o.exec.run('sysctl', ['-n', key]);
    if (cur.code === 0 && cur.stdout.trim() === '1') await this.o.exec.check('sysctl', ['-q', '-w', `${key}=2`]);
  }

  private get sboxKey(): string {
    return sboxRecord(this.o.nodeName, this.o.underlayIp, this.cfg.node ?? { ip: '0.0.0.0', mac: '' }).taskId;
  }

  private publishIfChanged(rec: EndpointRecord): void {
    const cur = this.state.records(INGRESS_NETWORK).find((r) => r.taskId === rec.taskId && r.node === this.o.nodeName);
    // not written by this process (e.g. came back from peers after a restart): write it once, so the gate tracks it
    if (cur && this.records.wrote(rec.taskId) && JSON.stringify(cur) === JSON.stringify(rec)) return;
    this.records.set(rec);
    this.o.gossip.pump();
  }

  /** Plumbing before the ingress sandbox's LB is applied; false when ingress is not configured. */
  async prepare(): Promise<boolean> {
    const addr = this.cfg.node;
    if (!addr) return false;
    const mtu = this.o.overlay.mtuOf(INGRESS_NET);
    if (!this.plumbed) {
      // Only before the first plumbing does the LB wait for the overlay (its sandbox for `ingress`
      // must exist). The periodic re-check does not: under churn an overlay settle can take
      // seconds, and every LB change (drains included) would queue behind it. If the overlay
      // sandbox went away meanwhile, ensureSandbox fails (MESHD_NOT_READY) and the loop retries.
      if (!this.everPlumbed) await this.o.overlay.settled();
      const six = await this.readUnderlay6();
      if (six.addrs.join() !== this.underlay6.join()) {
        this.o.log.info({ underlay6: six.addrs }, six.addrs.length ? 'routing mesh: IPv6 published ports on' : 'routing mesh: IPv6 published ports off');
        this.underlay6 = six.addrs;
        this.attached.clear();
      }
      if (this.v6 && six.dev) await this.keepRouterAdvertisements(six.dev);
      const r = await this.plumber.ensureSandbox(addr, mtu, this.v6);
      if (r.created.length) this.o.log.info({ created: r.created }, 'ingress sandbox plumbed');
      this.plumbed = this.everPlumbed = true;
    }
    this.publishIfChanged(sboxRecord(this.o.nodeName, this.o.underlayIp, addr, this.v6));
    await this.syncAttachments(mtu);
    return true;
  }

  /**
   * The host namespace's DNAT of published ports to the sandbox (replaced only when it changes),
   * except TCP ports with a PROXY protocol header: this process's listeners take those (opened
   * before the DNAT stops, closed after it is back; see proxy-ports.ts). A port that cannot be
   * bound fails the sync (retried) once the rest is programmed. On an IPv6 underlay they are
   * served on each IPv6 underlay address too (re-read at each check: an address changed at runtime
   * moves its listeners then). An ip6 table left from a run that had IPv6 addresses is deleted in the
   * same transaction, also after a restart (`kernelRead`).
   */
  async programHost(ingress: readonly IngressPublish[]): Promise<void> {
    if (!this.kernelRead && !this.underlay6.length && !this.had6) {
      // one `nft list tables` (not a read per table); a failed read fails the sync, retried like a failed apply
      this.had6 = hostTableFamilies(await this.o.exec.check('nft', ['list', 'tables'])).has('ip6');
    }
    this.kernelRead = true;
    const proxied = proxyPortsOf(ingress);
    const unbound = await this.proxies.open(proxied, this.underlay6);
    const host = renderHostIngress(this.o.underlayIp, dnatPortsOf(ingress, proxied), this.underlay6, this.had6);
    if (host !== this.hostRendered) {
      this.hostRendered = null;
      await this.o.exec.check('nft', ['-f', '-'], { input: host });
      this.hostRendered = host;
      // Once the ip6 table exists, a render without IPv6 addresses deletes it (it would keep DNATing a port
      // that is no longer published, on addresses that may come back).
      if (this.underlay6.length) this.had6 = true;
    }
    await this.proxies.closeStale(proxied, this.underlay6);
    if (unbound.size) throw ProxyPorts.failure(unbound);
  }

  /** Agent stop: the proxy listeners go (their ports refuse until the agent is back). */
  async stop(): Promise<void> {
    await this.proxies.closeAll();
  }

  /** Plumbs requested task attachments, mirrors their records, retires those of gone tasks. */
  private async syncAttachments(mtu: number): Promise<void> {
    let changed = false;
    for (const [taskId, a] of Object.entries(this.cfg.tasks)) {
      const main = this.state.localRecord(taskId);
      if (!main) {
        if (!a.seen) continue; // requested before the task started
        if (this.state.records(INGRESS_NETWORK).some((r) => r.taskId === taskId && r.node === this.o.nodeName)) {
          this.records.delete(taskId);
          this.o.gossip.pump();
        }
        await this.plumber.removeTask(taskId);
        this.attached.delete(taskId);
        delete this.cfg.tasks[taskId];
        changed = true;
        continue;
      }
      if (!a.seen) {
        a.seen = true;
        changed = true;
      }
      // A `starting` task (health check pending) is plumbed too: it is ready the moment it turns healthy.
      if (main.state !== 'draining' && !this.attached.has(taskId)) {
        await this.plumber.ensureTask(taskId, this.netnsOf(taskId), a, mtu, this.cfg.node!.ip, this.v6);
        this.attached.add(taskId);
      }
      // ip6: the task's derived IPv6 ingress address when dual stack, never its overlay one (`main`'s).
      const { ip6: _overlay6, ...rest } = main;
      this.publishIfChanged({ ...rest, network: INGRESS_NETWORK, networkName: INGRESS_NET.name, ip: a.ip, ...(this.v6 ? { ip6: ingress6Of(a.ip) } : {}), mac: a.mac, vip: null, aliases: [] });
    }
    if (changed) this.save();
  }

  /** Periodic check: re-verify all plumbing on the next sync (cheap, idempotent); false when not configured. */
  recheck(): boolean {
    if (!this.cfg.node) return false;
    this.plumbed = false;
    this.attached.clear();
    this.hostRendered = null;
    this.kernelRead = false;
    return true;
  }

  /** The `ingress` part of GET /v1/lb/status. */
  status(): object | null {
    if (!this.cfg.node) return null;
    const ipv6 = this.v6 ? { ip6: ingress6Of(this.cfg.node.ip), underlay6: this.underlay6 } : {};
    return { ...this.cfg.node, ...ipv6, sandbox: this.plumber.sbox, hostTable: HOST_NFT_TABLE, attachments: this.cfg.tasks, proxyProtocol: this.proxies.status() };
  }

  /** The persisted configuration (`GET /v1/ingress`). */
  config(): Persisted {
    return this.cfg;
  }

  /** `PUT /v1/ingress`: this node's ingress address; joins `ingress` and replans. */
  setNode(addr: IngressAddr): void {
    this.cfg.node = addr;
    this.save();
    this.plumbed = false;
    this.define(addr);
    this.changed();
  }

  /** `PUT /v1/ingress/tasks/:task`: a task's ingress attachment (MESHD_BAD_ARGUMENT for an address in use). */
  attachTask(id: string, addr: IngressAddr): void {
    const taken = Object.entries(this.cfg.tasks).find(([other, a]) => a.ip === addr.ip && other !== id);
    if (taken || this.cfg.node?.ip === addr.ip) throw new MeshError('MESHD_BAD_ARGUMENT', `ingress address ${addr.ip} is already used on ${this.o.nodeName}`);
    this.cfg.tasks[id] = { ...addr, seen: this.state.localRecord(id) !== undefined };
    this.attached.delete(id);
    this.save();
    this.changed();
  }
}

/**
 * The persisted routing-mesh configuration (`lb-ingress.json`, ingress-side.ts) from its text:
 * `{ node: addr | null, tasks: { [taskId]: addr & { seen?: boolean } } }`, every address as
 * parseIngressAddr accepts it (the only way one got in) with its `mac` written out. Throws
 * (MESHD_BAD_ARGUMENT, saying what is wrong) on anything else — bad JSON, `null`, a number, an
 * array, a missing or wrong-typed `node` / `tasks`, one bad entry: the caller then starts with no
 * configuration rather than half of one. Task ids are own properties (`Object.fromEntries`), so a
 * `__proto__` key stays a key.
 */
export function decodeIngressConfig(text: string): Persisted {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MeshError('MESHD_BAD_ARGUMENT', `not a JSON object: ${text.slice(0, 40)}`);
  const o = v as { node?: unknown; tasks?: unknown };
  const addr = (x: unknown, where: string): IngressAddr => {
    const a = x as { ip?: unknown; mac?: unknown } | null;
    if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof a.mac !== 'string') throw new MeshError('MESHD_BAD_ARGUMENT', `${where}: not an address {ip, mac}`);
    try {
      return parseIngressAddr(a);
    } catch (e) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `${where}: ${(e as Error).message}`);
    }
  };
  if (o.node === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', 'no `node` (null or an address)');
  const node = o.node === null ? null : addr(o.node, 'node');
  if (typeof o.tasks !== 'object' || o.tasks === null || Array.isArray(o.tasks)) throw new MeshError('MESHD_BAD_ARGUMENT', '`tasks` is not an object of task id → address');
  const tasks = Object.fromEntries(Object.entries(o.tasks as Record<string, unknown>).map(([id, x]) => {
    const seen = (x as { seen?: unknown } | null)?.seen;
    if (seen !== undefined && typeof seen !== 'boolean') throw new MeshError('MESHD_BAD_ARGUMENT', `tasks.${id}.seen: not a boolean`);
    return [id, { ...addr(x, `tasks.${id}`), ...(seen !== undefined ? { seen } : {}) }];
  }));
  return { node, tasks };
}
