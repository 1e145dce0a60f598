/**
 * The control plane's HTTP routes on the manager API (mTLS; managers administer, every
 * node may use the dispatcher for itself — the node is the one in its certificate, never
 * a parameter). Bodies are validated before anything changes; failures are 4xx with a
 * stable code.
 */
import { MeshError } from '../../core/errors.js';
import { RollingUpdate } from '../../core/orchestrator/index.js';
import { parseServiceSpec } from '../../core/spec/validate.js';
import type { ServiceSpec } from '../../core/spec/types.js';
import { isGlobal, isTerminal, replicasOf, taskSpecEqual, taskSpecOf } from '../../core/spec/types.js';
import { canaryCount } from '../../core/orchestrator/canary.js';
import { eventsForTaskChange } from '../../core/orchestrator/events.js';
import { parseBody } from '../model.js';
import type { ControlHost } from './host.js';
import { dispatchable } from './dispatch.js';
import { macFromIp } from '../../core/ipam/addr.js';
import { pumpUpdaters } from './engine.js';
import { checkFileRefs } from './file-objects.js';
import {
  attachNetworks, INGRESS, networkCreateSchema, networkView, serviceUpdateSchema, serviceView, stateAdvances,
  statusReportSchema, taskStateFromWorker, taskView, type NetworkRecord, type ServiceRecord, type TaskRecord,
} from './model.js';
import { checkNetworkCreate, checkServiceNetworks, filterNetworks } from './network-model.js';
import { findNetwork, findService, newId, type ControlState } from './state.js';
import { assignPublishedPorts } from '../../core/spec/ports.js';
import { checkRuntimeSupport, describedAs, normalizeDescription, type NodeDescription } from '../../core/spec/runtime.js';

/**
 * Records a node's reported description when it differs from its record; returns whether it
 * did. `descriptionAt` then makes the scheduler forget the images the node reported missing.
 */
export function recordDescription(st: ControlState, nodeId: string, reported: NodeDescription, now: number): boolean {
  const n = st.nodes.get(nodeId);
  if (!n) return false;
  const d = normalizeDescription(reported);
  if (describedAs(n, d)) return false;
  const { engine: _old, ...rest } = n;
  st.putNode({
    ...rest, runtimes: d.runtimes, ...(d.engine ? { engine: d.engine } : {}),
    ...(d.resources ? { resources: d.resources } : {}), ...(d.platform ? { platform: d.platform } : {}),
    descriptionAt: now, updatedAt: now,
  });
  return true;
}

/** Checks a spec against the cluster: networks exist, published ingress ports are free. Returns network ids. */
function checkSpec(st: ControlState, spec: ServiceSpec, selfId?: string): string[] {
  const ids = attachNetworks(spec).map((name) => {
    const n = st.networkByName(name);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `service ${spec.name}: no such network: ${name}`, { field: 'networks' });
    return n.id;
  });
  checkServiceNetworks(spec, ids.map((id) => st.networks.get(id)!));
  if (spec.ports.some((p) => p.mode === 'ingress' && p.published > 0) && !st.networkByName(INGRESS)) {
    throw new MeshError('MESHD_NOT_READY', 'the ingress network is missing: published ports are unavailable');
  }
  // A standalone container's name is a DNS name on its networks too (attachments.ts).
  if ([...st.attachments.values()].some((a) => a.name === spec.name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `service name ${spec.name} is already in use by a container (netctl run --name)`, { field: 'name' });
  }
  for (const s of st.services.values()) {
    if (s.id === selfId) continue;
    if (s.spec.name === spec.name) throw new MeshError('MESHD_BAD_ARGUMENT', `service name ${spec.name} is already in use by ${s.id}`, { field: 'name' });
    for (const p of spec.ports) {
      if (p.mode !== 'ingress' || p.published === 0) continue;
      if (s.spec.ports.some((q) => q.mode === 'ingress' && q.published === p.published && q.proto === p.proto)) {
        throw new MeshError('MESHD_BAD_ARGUMENT', `port ${p.published}/${p.proto} is already published by service ${s.spec.name}`, { field: 'ports' });
      }
    }
  }
  return ids;
}

/**
 * The spec with its open ingress ports (`-p 8000`) given published ports from 30000–32767
 * (core/spec/ports.ts), keeping those `current` had. dnsrr services publish through the mesh too.
 */
function withAssignedPorts(st: ControlState, spec: ServiceSpec, current?: ServiceRecord): ServiceSpec {
  if (!spec.ports.some((p) => p.mode === 'ingress' && p.published === 0)) return spec;
  const used = new Set<string>();
  for (const s of st.services.values()) {
    if (s.id === current?.id) continue;
    for (const p of s.spec.ports) if (p.mode === 'ingress' && p.published > 0) used.add(`${p.published}/${p.proto}`);
  }
  return { ...spec, ports: assignPublishedPorts(spec.ports, used, current?.spec.ports) };
}

function tasksOf(st: ControlState, serviceId: string): TaskRecord[] {
  return [...st.tasks.values()].filter((t) => t.serviceId === serviceId);
}

/**
 * The canary of `service update --canary P`: a replicated service whose task spec changes (the
 * canary runs the new tasks), no update or canary already working. Returns the record's `canary`.
 */
function checkCanary(cp: ControlHost, cur: ServiceRecord, spec: ServiceSpec, percent: number, force: boolean): { percent: number; count: number } {
  if (isGlobal(spec) || isGlobal(cur.spec)) throw new MeshError('MESHD_BAD_ARGUMENT', '--canary needs a replicated service', { field: 'canary' });
  if (replicasOf(spec) !== replicasOf(cur.spec)) throw new MeshError('MESHD_BAD_ARGUMENT', '--canary cannot change --replicas in the same update', { field: 'canary' });
  if (!force && taskSpecEqual(taskSpecOf(cur.spec), taskSpecOf(spec))) throw new MeshError('MESHD_BAD_ARGUMENT', '--canary needs a change to the tasks (image, env, ...): nothing to try', { field: 'canary' });
  const state = cp.updaters.get(cur.id)?.state;
  if (state === 'updating' || state === 'canary' || state === 'rollback_started') {
    throw new MeshError('MESHD_BAD_ARGUMENT', `service ${cur.spec.name} is ${state === 'canary' ? 'running a canary' : 'updating'}: complete or roll it back first`, { field: 'canary' });
  }
  return { percent, count: canaryCount(replicasOf(spec), percent) };
}

/** Starts a rolling update from the record's current spec to `next` (when tasks need replacing). */
function startUpdate(cp: ControlHost, st: ControlState, from: ServiceRecord, to: ServiceRecord, force: boolean): void {
  cp.updaters.delete(from.id);
  if (!force && taskSpecEqual(taskSpecOf(from.spec), taskSpecOf(to.spec))) return;
  const u = new RollingUpdate({
    serviceId: to.id, from: { version: from.version, spec: from.spec }, to: { version: to.version, spec: to.spec },
    tasks: tasksOf(st, to.id), now: cp.now(), newId, force, ...(to.canary ? { canary: { count: to.canary.count } } : {}),
  });
  cp.updaters.set(to.id, u);
  // The canary's slots go into the record with it: a manager that starts resumes them (the weights
  // are derived from percent and count wherever they are needed, dispatch.ts).
  if (to.canary) st.putService({ ...to, canary: { ...to.canary, slots: u.canarySlots } });
  pumpUpdaters(st, [], { now: cp.now(), newId, updaters: cp.updaters, liveness: cp.o.liveness, selfId: '', absentGraceMs: 0, since: 0 });
}

/**
 * `fn` on a fresh state in the serialized chain — unless the same `input` under `key` was answered
 * from a state loaded at the store's current revision: then that answer, without a turn in the
 * chain. For the nodes' per-second rounds (status report, ingress addresses): N nodes made 2N full
 * state loads a second that every commit queued behind, although the store had not changed.
 * Correct because the memo keeps the revision read BEFORE its state was loaded (ControlState
 * .loadedRevision): any write since — including this call's own commit — moves the store past it,
 * so the next call computes again; the answer depends on nothing but the state and the input
 * (`fn` must not read the clock for its answer).
 */
export async function memoized<T>(cp: ControlHost, key: string, input: string, fn: (st: ControlState) => T | Promise<T>): Promise<T> {
  const seen = cp.memos.get(key);
  if (seen && seen.input === input && seen.revision === (await cp.storeRevision())) return seen.answer as T;
  let revision = 0;
  const answer = await cp.serialize((st) => {
    revision = st.loadedRevision;
    return fn(st);
  });
  cp.memos.set(key, { input, revision, answer });
  return answer;
}

export function registerRoutes(cp: ControlHost): void {
  const m = cp.o.manager;
  const changed = <T>(p: Promise<T>): Promise<T> => p.then((v) => {
    cp.kick();
    return v;
  });

  // ---- networks -------------------------------------------------------------------------
  m.route('POST', '/v1/networks', 'manager', async (req) => {
    const b = parseBody(networkCreateSchema, 'network', req.body);
    const { ipam, extra } = checkNetworkCreate(b);
    return { status: 201, json: await changed(cp.serialize((st) => {
      if (st.networkByName(b.name)) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${b.name} already exists`, { field: 'name' });
      const a = st.ipam.create(ipam);
      const rec: NetworkRecord = {
        id: newId(), name: a.name, subnet: a.subnet, gateway: a.gateway, vni: a.vni, attachable: a.attachable, ingress: false, createdAt: cp.now(),
        ...(a.mtu !== undefined ? { mtu: a.mtu } : {}), ...(a.ipRange !== undefined ? { ipRange: a.ipRange } : {}),
        ...(a.auxAddresses !== undefined ? { auxAddresses: a.auxAddresses } : {}), ...extra,
        ...(a.subnet6 !== undefined ? { subnet6: a.subnet6, gateway6: a.gateway6 } : {}),
      };
      st.putNetwork(rec);
      return networkView(rec);
    })) };
  });
  // `?filter=label=k` (repeatable), docker's `network ls --filter` (network-model.ts filterNetworks).
  m.route('GET', '/v1/networks', 'node', async (req) => ({
    json: await cp.serialize((st) => filterNetworks([...st.networks.values()], req.query.getAll('filter')).sort((a, b) => a.name.localeCompare(b.name)).map(networkView)),
  }));
  m.route('GET', '/v1/networks/:id', 'node', async (req) => ({ json: await cp.serialize((st) => networkView(findNetwork(st, req.params.id!))) }));
  m.route('DELETE', '/v1/networks/:id', 'manager', async (req) => ({ json: await changed(cp.serialize((st) => {
    const n = findNetwork(st, req.params.id!);
    if (n.ingress) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${n.name} is the built-in ingress network and cannot be removed`);
    const users = [...st.services.values()].filter((s) => attachNetworks(s.spec).includes(n.name)).map((s) => s.spec.name);
    if (users.length) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${n.name} is in use by service(s) ${users.join(', ')}`, { services: users });
    if ([...st.tasks.values()].some((t) => !t.released && t.addresses[n.id] !== undefined)) {
      throw new MeshError('MESHD_NOT_READY', `network ${n.name} still has tasks attached (they are stopping): retry shortly`);
    }
    st.deleteNetwork(n.id);
    return { removed: n.id, name: n.name };
  })) }));

  // ---- services -------------------------------------------------------------------------
  m.route('POST', '/v1/services', 'manager', async (req) => {
    const parsed = parseServiceSpec(req.body);
    checkRuntimeSupport(parsed);
    return { status: 201, json: await changed(cp.serialize(async (st) => {
      await checkFileRefs(cp.o.manager.store, parsed);
      const spec = withAssignedPorts(st, parsed);
      const netIds = checkSpec(st, spec);
      const now = cp.now();
      const rec: ServiceRecord = { id: newId(), version: 1, spec, vips: {}, createdAt: now, updatedAt: now };
      st.assignVips(rec, rec, spec.endpointMode === 'vip' ? netIds : []);
      st.putService(rec);
      return serviceView(rec, [], st.netName);
    })) };
  });
  m.route('GET', '/v1/services', 'manager', async () => ({
    json: await cp.serialize((st) => {
      const tasks = [...st.tasks.values()];
      return [...st.services.values()].sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((s) => serviceView(s, tasks, st.netName));
    }),
  }));
  m.route('GET', '/v1/services/:id', 'manager', async (req) => ({
    json: await cp.serialize((st) => serviceView(findService(st, req.params.id!), [...st.tasks.values()], st.netName)),
  }));
  m.route('POST', '/v1/services/:id/update', 'manager', async (req) => {
    const b = parseBody(serviceUpdateSchema, 'service update', req.body);
    const parsed = parseServiceSpec(b.spec);
    checkRuntimeSupport(parsed);
    return { json: await changed(cp.serialize(async (st) => {
      const cur = findService(st, req.params.id!);
      await checkFileRefs(cp.o.manager.store, parsed);
      const spec = withAssignedPorts(st, parsed, cur);
      if (b.version !== undefined && b.version !== cur.version) {
        throw new MeshError('MESHD_STORE_CONFLICT', `service ${cur.spec.name} is at version ${cur.version}, not ${b.version}`, { expected: b.version, actual: cur.version });
      }
      if (spec.name !== cur.spec.name) throw new MeshError('MESHD_BAD_ARGUMENT', 'a service cannot be renamed', { field: 'name' });
      const netIds = checkSpec(st, spec, cur.id);
      const next: ServiceRecord = { ...cur, version: cur.version + 1, spec, previous: { version: cur.version, spec: cur.spec }, updatedAt: cp.now(), canary: undefined };
      if (b.canary !== undefined) next.canary = checkCanary(cp, cur, spec, b.canary, b.force);
      st.assignVips(cur, next, spec.endpointMode === 'vip' ? netIds : []);
      st.putService(next);
      startUpdate(cp, st, cur, next, b.force);
      return serviceView(st.services.get(cur.id)!, [...st.tasks.values()], st.netName);
    })) };
  });
  // `service update --canary-complete`: the held canary's tasks replace their slots and the rest rolls.
  m.route('POST', '/v1/services/:id/canary-complete', 'manager', async (req) => ({ json: await changed(cp.serialize((st) => {
    const cur = findService(st, req.params.id!);
    const u = cp.updaters.get(cur.id);
    if (!u?.canaryHeld) throw new MeshError('MESHD_BAD_ARGUMENT', `service ${cur.spec.name} has no canary running (state ${cur.update?.state ?? 'none'})`);
    st.putService({ ...cur, canary: undefined });
    u.promote(cp.now());
    pumpUpdaters(st, [], { now: cp.now(), newId, updaters: cp.updaters, liveness: cp.o.liveness, selfId: '', absentGraceMs: 0, since: 0 });
    return serviceView(st.services.get(cur.id)!, [...st.tasks.values()], st.netName);
  })) }));
  m.route('POST', '/v1/services/:id/rollback', 'manager', async (req) => ({ json: await changed(cp.serialize((st) => {
    const cur = findService(st, req.params.id!);
    const u = cp.updaters.get(cur.id);
    if (u && u.state !== 'completed') {
      if (cur.canary) st.putService({ ...cur, canary: undefined });
      u.rollback(cp.now());
      pumpUpdaters(st, [], { now: cp.now(), newId, updaters: cp.updaters, liveness: cp.o.liveness, selfId: '', absentGraceMs: 0, since: 0 });
    } else {
      if (!cur.previous) throw new MeshError('MESHD_BAD_ARGUMENT', `service ${cur.spec.name} has no previous spec to roll back to`);
      // Docker: a manual rollback rolls out with the current spec's rollback config.
      const prevSpec = { ...cur.previous.spec, updateConfig: cur.spec.rollbackConfig };
      const next: ServiceRecord = { ...cur, version: cur.version + 1, spec: cur.previous.spec, previous: { version: cur.version, spec: cur.spec }, updatedAt: cp.now() };
      st.assignVips(cur, next, cur.previous.spec.endpointMode === 'vip' ? checkSpec(st, cur.previous.spec, cur.id) : []);
      st.putService(next);
      startUpdate(cp, st, cur, { ...next, spec: prevSpec }, false);
    }
    return serviceView(st.services.get(cur.id)!, [...st.tasks.values()], st.netName);
  })) }));
  m.route('DELETE', '/v1/services/:id', 'manager', async (req) => ({ json: await changed(cp.serialize((st) => {
    const cur = findService(st, req.params.id!);
    cp.updaters.delete(cur.id);
    st.deleteService(cur.id);
    return { removed: cur.id, name: cur.spec.name };
  })) }));

  // ---- tasks ----------------------------------------------------------------------------
  m.route('GET', '/v1/tasks', 'manager', async (req) => ({ json: await cp.serialize((st) => {
    const svcRef = req.query.get('service');
    const nodeRef = req.query.get('node');
    const svc = svcRef ? findService(st, svcRef) : undefined;
    const node = nodeRef ? [...st.nodes.values()].find((n) => n.id === nodeRef || n.hostname === nodeRef) : undefined;
    if (nodeRef && !node) throw new MeshError('MESHD_NODE_NOT_FOUND', `no node ${nodeRef}`);
    return [...st.tasks.values()]
      .filter((t) => (!svc || t.serviceId === svc.id) && (!node || t.nodeId === node.id))
      .sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || b.timestamps.created - a.timestamps.created)
      .map((t) => taskView(t, st.services.get(t.serviceId)?.spec.name ?? t.serviceId, st.nodeName, st.netName));
  }) }));

  // ---- dispatcher -----------------------------------------------------------------------
  // The routing mesh of a node: its ingress-sandbox address and the ingress addresses of its
  // tasks that publish ports without being attached to ingress (plumbed by the node's LB).
  m.route('GET', '/v1/dispatcher/ingress', 'node', async (_req, ctx) => ({
    json: await memoized(cp, `ingress:${ctx.peer!.nodeId}`, '', (st) => {
      const nodeId = ctx.peer!.nodeId;
      const ingress = st.networkByName(INGRESS);
      const sbox = st.sboxAddress(nodeId);
      const tasks: Record<string, { ip: string; mac: string }> = {};
      for (const t of st.tasks.values()) {
        if (!ingress || !dispatchable(t, nodeId) || t.desiredState !== 'running') continue;
        const ip = t.addresses[ingress.id];
        if (ip && !attachNetworks(t.spec).includes(INGRESS)) tasks[t.id] = { ip, mac: macFromIp(ip) };
      }
      return { node: sbox ? { ip: sbox, mac: macFromIp(sbox) } : null, tasks };
    }),
  }));
  m.route('POST', '/v1/dispatcher/status', 'node', async (req, ctx) => {
    const r = parseBody(statusReportSchema, 'status report', req.body);
    const nodeId = ctx.peer!.nodeId;
    // Every node reports every second (its heartbeat round), almost always the same report against
    // an unchanged store: answered from the memo (processing it again would change nothing).
    return { json: await memoized(cp, `status:${nodeId}`, JSON.stringify(r), (st) => {
      const now = cp.now();
      const events = [];
      let updated = 0;
      // A node that gained a runtime may take tasks that wait for it: kick.
      const described = r.description !== undefined && recordDescription(st, nodeId, r.description, now);
      for (const rep of r.tasks) {
        const t = st.tasks.get(rep.id);
        if (!t || t.nodeId !== nodeId) continue; // not this node's task: ignore, never trust the body's claim
        const state = taskStateFromWorker(rep.state, t.desiredState);
        const error = rep.error ?? undefined;
        const health = rep.health ?? undefined;
        if (t.state === 'orphaned' && state && isTerminal(state) && !t.released) {
          st.putTask(st.releaseTask(t)); // the node is back and the lost task has ended there
          continue;
        }
        if (!state || !stateAdvances(t.state, state)) {
          if ((error && error !== t.error) || health !== t.health) {
            const next: TaskRecord = { ...t, ...(error ? { error } : {}), health };
            st.putTask(next);
            // running (starting) → running (healthy): the rolling update may move on now.
            for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
          }
          continue;
        }
        let next: TaskRecord = { ...t, state, error, health, timestamps: { ...t.timestamps, updated: now }, ...(state === 'failed' && error ? { message: error } : {}) };
        if (isTerminal(state)) next = st.releaseTask(next);
        st.putTask(next);
        updated++;
        for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
      }
      // Tasks the manager wants stopped that the node does not hold at all: nothing left to stop.
      const reported = new Set(r.tasks.map((x) => x.id));
      for (const t of st.tasks.values()) {
        if (t.nodeId !== nodeId || t.desiredState !== 'shutdown' || reported.has(t.id)) continue;
        if (t.state === 'orphaned' && !t.released) {
          st.putTask(st.releaseTask(t));
          continue;
        }
        if (isTerminal(t.state) || (t.state !== 'assigned' && t.state !== 'running')) continue;
        const next = st.releaseTask({ ...t, state: 'shutdown', timestamps: { ...t.timestamps, updated: now } });
        st.putTask(next);
        updated++;
        for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
      }
      if (events.length) pumpUpdaters(st, events, { now, newId, updaters: cp.updaters, liveness: cp.o.liveness, selfId: '', absentGraceMs: 0, since: 0 });
      if (updated || described) cp.kick();
      // The node's role in the cluster: a node promoted or demoted takes it on (manager-link.ts).
      return { updated, role: st.nodes.get(nodeId)?.role ?? null };
    }) };
  });
}
