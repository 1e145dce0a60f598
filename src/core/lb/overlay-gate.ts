/**
 * Overlay gate: which REMOTE backends a node's load balancer may select yet.
 *
 * The LB and the overlay hear the same gossip table event, but the overlay programs the VXLAN
 * FDB / neighbour entries of a new remote endpoint after its own debounce and `ip -batch` (under
 * load seconds later). A connection DNATed to a remote task meanwhile is lost: the SYN goes to a
 * neighbour the kernel cannot resolve, and the client times out. So a new remote backend is
 * left out of the plan until the overlay reports (after a SUCCESSFUL reconcile, which verifies
 * by reading the kernel back) that it holds that endpoint at the address the table names.
 *
 * Only additions are gated:
 * - local backends never (no overlay involved);
 * - draining backends never (they get no new connection; leaving them in keeps the drain and
 *   the removal exactly as without the gate);
 * - a backend already active in what was last applied with success to the namespace ("in
 *   force") is never withdrawn (e.g. right after an agent restart, before the overlay's view
 *   is rebuilt, or while an overlay reconcile fails: the entries it held stay in the kernel);
 * - when the overlay's view is unknown (`programmed === null`: no successful reconcile since
 *   the agent started) nothing is gated: withholding would remove serving backends.
 * - a backend whose record places it on a node that is not a live member (dead in gossip, past
 *   the overlay's dead grace, or unknown) is held with reason `node-dead`: the overlay programs
 *   members only, so waiting for it would be waiting for the node, and the node's return (or
 *   the manager rescheduling the task) is what moves it on — both are events, so the gate needs
 *   no timer. Without this case a plan waited on the overlay for something it will never do.
 *
 * The location matters, not just the address: IPAM reuses a freed address for a new task on
 * another node, and the entry the kernel still holds then points at the OLD node. Keys are
 * `network ip` → `mac@nodeIp`.
 *
 * Identity: the dataplane memoizes compiled frontends per service object, so an object with
 * nothing held back is returned as is, and a gated copy is reused while its inputs (the source
 * object and the context version) are unchanged (`GateMemo`). Pure: no I/O.
 */
import type { Backend, IngressPublish, VipService } from './model.js';

/** Where the gossip table says a remote endpoint lives: its MAC and its node's underlay address. */
export interface EndpointLocation {
  mac: string;
  nodeIp: string;
}

/** Key of a remote endpoint on an overlay network. */
export function endpointKey(network: string, ip: string): string {
  return `${network} ${ip}`;
}

/** Value of `programmed`: the MAC (neighbour entry) and the FDB destination (node underlay). */
export function locationKey(l: EndpointLocation): string {
  return `${l.mac.toLowerCase()}@${l.nodeIp}`;
}

/** The kernel-side shape the overlay programs per network sandbox (core/overlay Sandbox fits). */
export interface ProgrammedSandbox {
  network: string;
  fdb: ReadonlyArray<{ mac: string; dst: string }>;
  neigh: ReadonlyArray<{ ip: string; mac: string }>;
}

/**
 * Remote endpoints a set of sandboxes holds: `network ip` → `mac@nodeIp`, for every neighbour
 * entry whose MAC also has an FDB entry (both are needed for a packet to leave).
 */
export function programmedOf(sandboxes: readonly ProgrammedSandbox[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of sandboxes) {
    const dst = new Map(s.fdb.map((f) => [f.mac.toLowerCase(), f.dst]));
    for (const n of s.neigh) {
      const nodeIp = dst.get(n.mac.toLowerCase());
      if (nodeIp !== undefined) out.set(endpointKey(s.network, n.ip), locationKey({ mac: n.mac, nodeIp }));
    }
  }
  return out;
}

/** True when two programmed views are the same (the overlay reports progress only on change). */
export function sameProgrammed(a: ReadonlyMap<string, string> | null, b: ReadonlyMap<string, string> | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export interface GateContext {
  /** What the overlay holds (`programmedOf`), or null when unknown: then nothing is gated. */
  programmed: ReadonlyMap<string, string> | null;
  /** Where the table says backend `b` on `network` lives; undefined (no record) holds it back. */
  locate(network: string, b: Backend): EndpointLocation | undefined;
  /** True when `b` (id and address) is active in the state last applied with success here. */
  inForce(b: Backend): boolean;
  /** True when the node at underlay address `nodeIp` is a member the overlay programs (alive, suspect, or in its dead grace). */
  nodeLive(nodeIp: string): boolean;
  /**
   * Opaque version of everything above except `locate` (which follows the records, and a
   * record change replaces its service object): equal versions give equal answers for the
   * same object, so `GateMemo` entries are reused.
   */
  version: string;
}

/** Why a backend is held back. */
export type HoldReason =
  /** The overlay holds no entry for the address yet (or its last reconcile failed). */
  | 'overlay-pending'
  /** The overlay holds the address at another MAC / node (a reused address, not re-programmed yet). */
  | 'overlay-stale'
  /** No table record locates the backend. */
  | 'no-record'
  /** The record places it on a node that is not a live member: the overlay will not program it. */
  | 'node-dead';

/** The decision for one backend on one network: null = may be selected. */
export function holdReason(network: string, b: Backend, ctx: GateContext): HoldReason | null {
  if (b.local || b.state !== 'active' || ctx.programmed === null) return null;
  const loc = ctx.locate(network, b);
  const have = ctx.programmed.get(endpointKey(network, b.ip));
  if (loc && have === locationKey(loc)) return null;
  if (ctx.inForce(b)) return null;
  if (!loc) return 'no-record';
  if (!ctx.nodeLive(loc.nodeIp)) return 'node-dead';
  return have === undefined ? 'overlay-pending' : 'overlay-stale';
}

/** A backend left out of a frontend, for status output. */
export interface HeldBackend {
  network: string;
  /** Service id of the frontend. */
  service: string;
  id: string;
  ip: string;
  reason: HoldReason;
}

/** Per-namespace memo of gated objects (keyed by the source object). */
export type GateMemo = WeakMap<object, { version: string; out: object; held: HeldBackend[] }>;

export function newGateMemo(): GateMemo {
  return new WeakMap();
}

function gateOne<T extends { backends: Backend[] }>(src: T, network: string, service: string, ctx: GateContext, memo: GateMemo): { out: T; held: HeldBackend[] } {
  const m = memo.get(src);
  if (m && m.version === ctx.version) return { out: m.out as T, held: m.held };
  const held: HeldBackend[] = [];
  const keep: Backend[] = [];
  for (const b of src.backends) {
    const why = holdReason(network, b, ctx);
    if (why === null) keep.push(b);
    else held.push({ network, service, id: b.id, ip: b.ip, reason: why });
  }
  const out = held.length === 0 ? src : { ...src, backends: keep };
  memo.set(src, { version: ctx.version, out, held });
  return { out, held };
}

/** VIP services (each with the network it is on) with not-yet-programmed remote backends left out. */
export function gateServices(items: ReadonlyArray<{ network: string; service: VipService }>, ctx: GateContext, memo: GateMemo): { services: VipService[]; held: HeldBackend[] } {
  const services: VipService[] = [];
  const held: HeldBackend[] = [];
  for (const { network, service } of items) {
    const g = gateOne(service, network, service.id, ctx, memo);
    services.push(g.out);
    held.push(...g.held);
  }
  return { services, held };
}

/** Published ports (all on `network`, the ingress overlay) with not-yet-programmed remote backends left out. */
export function gateIngress(pubs: readonly IngressPublish[], network: string, ctx: GateContext, memo: GateMemo): { ingress: IngressPublish[]; held: HeldBackend[] } {
  const ingress: IngressPublish[] = [];
  const held: HeldBackend[] = [];
  const seen = new Set<string>();
  for (const p of pubs) {
    const g = gateOne(p, network, p.service, ctx, memo);
    ingress.push(g.out);
    // Publishes of one service share their backends: report each held backend once per service.
    for (const h of g.held) {
      const k = `${h.service} ${h.id} ${h.ip}`;
      if (!seen.has(k)) held.push(h);
      seen.add(k);
    }
  }
  return { ingress, held };
}

/** One line per held backend (LB status, `netctl debug lb`). */
export function describeHeld(h: HeldBackend): string {
  const why = h.reason === 'overlay-pending' ? 'the overlay has not programmed it yet'
    : h.reason === 'overlay-stale' ? 'the overlay still holds its address at another node'
      : h.reason === 'node-dead' ? 'its node is not a live member (the overlay programs members only)'
        : 'no endpoint record locates it';
  return `backend ${h.ip} (task ${h.id.slice(0, 12)}, service ${h.service}) held back: ${why}`;
}
