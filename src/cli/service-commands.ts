/**
 * `netctl service ...` (docker service create/ls/ps/inspect/scale/update/rollback/rm).
 * Specs are shaped here from flags and validated by the manager, whose error names the
 * field. Create, update, scale and rollback follow the service until it converged (like
 * `docker service create`'s "verify: Service converged") unless --detach.
 */
import { addLbOptions, lbFrom, type LbFlags } from './lb-flags.js';
import { addCanaryOptions, canaryPercent, type CanaryFlags } from './canary-flags.js';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { addFileOptions, editFiles, filesFrom, type FileFlags } from './file-flags.js';
import type { GlobalOpts } from './context.js';
import { managerCall } from './cluster-commands.js';
import { printReceipt } from './convergence-commands.js';
import { formatted, printFormatted, table } from './format.js';
import { logsCommand } from './logs-commands.js';
import { collect, parseKv } from './node-commands.js';
import {
  healthcheckFrom, parseCount, parseDuration, parseNetwork, parsePublish, parseRuntime, parseScale, publishKey, type HealthFlags, type PortInput,
} from './service-flags.js';
import { addResourceOptions, resourcesFrom, type ResourceFlags } from './resource-flags.js';
import { addPolicyOptions, allowFromCreate, allowFromUpdate, type PolicyFlags } from './policy-flags.js';
import { addTaskOptions, taskFieldsFrom, type TaskFlags } from './task-flags.js';

type Spec = Record<string, unknown> & {
  name: string;
  image: string;
  runtime?: string;
  command?: string[];
  env: Record<string, string>;
  mode: { replicated?: { replicas: number }; global?: Record<string, never> };
  ports: PortInput[];
  networks: Array<string | { target: string; aliases: string[] }>;
  networkAliases?: Record<string, string[]>;
  constraints: string[];
  updateConfig: Record<string, unknown>;
  rollbackConfig: Record<string, unknown>;
};
interface ServiceView {
  id: string;
  name: string;
  version: number;
  /** The runtime its tasks run on (the spec's, or automatic from the image). */
  runtime?: string;
  mode: string;
  replicas: { running: number; desired: number };
  image: string;
  ports: PortInput[];
  update: { state: string; message: string } | null;
  spec: Spec;
}
/** A task as the manager's `GET /tasks` returns it (service ps, stack ps). */
export interface TaskView {
  id: string;
  name: string;
  slot: number | null;
  node: string | null;
  desiredState: string;
  state: string;
  message: string | null;
  error: string | null;
  /** Tasks with a health check: starting | healthy | unhealthy (null without a check). */
  health?: string | null;
  image: string;
  addresses: Record<string, string>;
  updatedAt: string;
}

type Phase = 'update' | 'rollback';
const CONFIG_FLAGS = ['Parallelism', 'Delay', 'FailureAction', 'Monitor', 'MaxFailureRatio', 'Order'] as const;
/** `--update-*` and `--rollback-*` flags as commander names them (`updateDelay`, `rollbackOrder`, ...). */
type UpdateFlags = { [K in `${Phase}${(typeof CONFIG_FLAGS)[number]}`]?: string };

/** The update (or rollback) config from its flags, over `base` (the stored config on update). */
function updateConfigFrom(o: UpdateFlags, phase: Phase, base: Record<string, unknown> = {}): Record<string, unknown> {
  const u = { ...base };
  const f = (k: (typeof CONFIG_FLAGS)[number]) => o[`${phase}${k}`];
  const flag = (k: string) => `--${phase}-${k}`;
  if (f('Parallelism') !== undefined) u.parallelism = parseCount(f('Parallelism')!, flag('parallelism'));
  if (f('Delay') !== undefined) u.delayMs = parseDuration(f('Delay')!, flag('delay'));
  if (f('FailureAction') !== undefined) u.failureAction = f('FailureAction');
  if (f('Monitor') !== undefined) u.monitorMs = parseDuration(f('Monitor')!, flag('monitor'));
  if (f('MaxFailureRatio') !== undefined) u.maxFailureRatio = Number(f('MaxFailureRatio'));
  if (f('Order') !== undefined) u.order = f('Order');
  return u;
}

/** Docker's health flags (create and update). */
function addHealthOptions(c: Command): Command {
  return c
    .option('--health-cmd <cmd>', 'command run (by sh -c) in the task to check its health; the task is a backend only once healthy')
    .option('--health-interval <d>', 'time between checks, e.g. 5s (default 30s)')
    .option('--health-timeout <d>', 'longest a check may run, e.g. 2s (default 30s)')
    .option('--health-retries <n>', 'consecutive failures that make a task unhealthy (default 3)')
    .option('--health-start-period <d>', 'failures during this time after start do not count, e.g. 10s')
    .option('--no-healthcheck', 'disable any health check, the image\'s HEALTHCHECK included')
    .option('--stop-grace-period <d>', 'time a task gets after its stop signal before SIGKILL, e.g. 30s (default 5s)')
    .option('--stop-signal <sig>', 'signal that asks a task to stop, e.g. SIGQUIT (default: the image\'s STOPSIGNAL, else SIGTERM)');
}

/** `--stop-grace-period` / `--stop-signal` → spec fields (the manager validates the signal's name). */
function stopFrom(o: { stopGracePeriod?: string; stopSignal?: string }): { stopGracePeriodMs?: number; stopSignal?: string } {
  return {
    ...(o.stopGracePeriod !== undefined ? { stopGracePeriodMs: parseDuration(o.stopGracePeriod, '--stop-grace-period') } : {}),
    ...(o.stopSignal !== undefined ? { stopSignal: o.stopSignal } : {}),
  };
}

function addUpdateOptions(c: Command): Command {
  for (const phase of ['update', 'rollback'] as const) {
    const what = phase === 'update' ? 'updated' : 'rolled back';
    c.option(`--${phase}-parallelism <n>`, `tasks ${what} at once (0 = all)`)
      .option(`--${phase}-delay <d>`, `delay between two tasks ${what} by one worker, e.g. 1s`)
      .option(`--${phase}-failure-action <a>`, phase === 'update' ? 'pause|continue|rollback' : 'pause|continue')
      .option(`--${phase}-monitor <d>`, 'a task failing within this time after start counts as a failure, e.g. 5s')
      .option(`--${phase}-max-failure-ratio <r>`, 'failures tolerated, 0..1')
      .option(`--${phase}-order <o>`, 'stop-first|start-first');
  }
  return c
    .option('-d, --detach', 'return at once instead of waiting for convergence')
    .option('--timeout <d>', 'how long to wait for convergence', '120s');
}

/** `5 seconds ago` (docker's CURRENT STATE style). */
/** The `service ls` table (or ids with -q); `stack services` prints the same. */
export interface ServiceRow {
  id: string;
  name: string;
  mode: string;
  image: string;
  replicas: { running: number; desired: number };
  ports: Array<{ published: number; target: number; proto: string }>;
}
export function printServiceList(list: readonly ServiceRow[], quiet?: boolean): void {
  if (quiet) return void process.stdout.write(list.map((s) => `${s.id}\n`).join(''));
  process.stdout.write(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], list.map((s) => [
    s.id.slice(0, 12), s.name, s.mode, `${s.replicas.running}/${s.replicas.desired}`, s.image,
    s.ports.filter((p) => p.published > 0).map((p) => `*:${p.published}->${p.target}/${p.proto}`).join(', ') || null,
  ])));
}

import { ago } from './time-ago.js';

export { ago };

/**
 * `--network-rm` then `--network-add` on a stored (normalized) spec: removed networks lose
 * their aliases; added ones go in docker's long form, which the manager normalizes again.
 */
export function editNetworks(spec: Pick<Spec, 'networks' | 'networkAliases'>, rm: readonly string[], add: ReadonlyArray<{ target: string; aliases: string[] }>): Pick<Spec, 'networks' | 'networkAliases'> {
  const name = (n: Spec['networks'][number]) => (typeof n === 'string' ? n : n.target);
  const gone = new Set([...rm, ...add.map((a) => a.target)]);
  const keep = spec.networks.filter((n) => !gone.has(name(n)));
  const aliases = Object.fromEntries(Object.entries(spec.networkAliases ?? {}).filter(([n]) => !gone.has(n)));
  // A re-added network replaces its old aliases with the new ones (docker's behaviour).
  return { networks: [...keep, ...add], networkAliases: aliases };
}

/** CURRENT STATE of a task: `running (healthy)` for a running task with a health check (docker ps style). */
export function stateWithHealth(t: Pick<TaskView, 'state' | 'health'>): string {
  return t.state === 'running' && t.health ? `running (${t.health})` : t.state;
}

/** `--runtime`'s help: what netns means for IMAGE is the surprise worth stating. */
export const RUNTIME_HELP = 'netns|docker|auto (default auto: image whoami → netns, any other image → docker). '
  + 'With netns the IMAGE is only a label: the command runs from the host\'s filesystem in its own network namespace';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows a service until its tasks run on the current spec and no update is in flight. */
async function converge(call: ReturnType<typeof managerCall>, id: string, timeout: string, receipt?: { g: GlobalOpts; since: number }): Promise<void> {
  const deadline = Date.now() + parseDuration(timeout, '--timeout');
  let last = '';
  for (;;) {
    const s = await call<ServiceView>('GET', `/services/${encodeURIComponent(id)}`);
    const u = s.update?.state;
    const line = `overall progress: ${s.replicas.running} out of ${s.replicas.desired} tasks${u && u !== 'completed' ? ` (${u})` : ''}`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (u === 'paused' || u === 'rollback_paused') throw new MeshError('MESHD_NOT_READY', `update ${u}: ${s.update!.message}`);
    // A canary is settled once its tasks run beside the old ones (held until promoted or rolled back).
    if (u === 'canary') return void process.stderr.write(`${s.update!.message}\n`);
    const settled = !u || u === 'completed' || u === 'rollback_completed';
    if (settled && s.replicas.running === s.replicas.desired) {
      if (u === 'rollback_completed') process.stderr.write(`rollback: ${s.update!.message}\n`);
      process.stderr.write('verify: Service converged\n');
      // Convergence receipt: every node's LB and DNS hold the new endpoints (src/cli/convergence-commands.ts).
      if (receipt) await printReceipt(receipt.g, call, s.name, receipt.since);
      return;
    }
    if (Date.now() > deadline) throw new MeshError('MESHD_NOT_READY', `service ${s.name} did not converge within ${timeout} (${s.replicas.running}/${s.replicas.desired} running): see netctl service ps ${s.name}`);
    await sleep(500);
  }
}

export function serviceCommand(globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  // Positional options: what follows IMAGE belongs to the task's command (`busybox sh -c ...`), as in docker.
  const svc = new Command('service').description('services of the cluster (manager only)').enablePositionalOptions();
  const get = (ref: string) => call<ServiceView>('GET', `/services/${encodeURIComponent(ref)}`);
  const update = (s: ServiceView, spec: Spec, force = false, canary?: number) =>
    call<ServiceView>('POST', `/services/${encodeURIComponent(s.id)}/update`, { spec, version: s.version, force, ...(canary !== undefined ? { canary } : {}) });

  addLbOptions(addPolicyOptions(addFileOptions(addUpdateOptions(addHealthOptions(addResourceOptions(addTaskOptions(svc
    .command('create')
    .description('create a service; image `whoami` is the built-in demo server, any other image runs in Docker')
    .argument('<image>', 'image (whoami = built-in demo server)')
    .argument('[args...]', 'command arguments (options after IMAGE are passed to the command)')
    .passThroughOptions()
    .requiredOption('--name <name>', 'service name (DNS label)')
    .option('--replicas <n>', 'number of tasks (replicated mode)')
    .option('--runtime <r>', RUNTIME_HELP)
    .option('--mode <mode>', 'replicated|global', 'replicated')
    .option('-p, --publish <spec>', 'publish a port: 8080:80[/udp] or mode=ingress,published=8080,target=80,policy=local (repeatable); proxy-protocol=v1|v2 sends the client address to the task', collect)
    .option('--network <net>', 'attach to a network: app, or name=app,alias=NAME[,alias=NAME2] (repeatable)', collect)
    .option('--endpoint-mode <m>', 'vip|dnsrr', 'vip')
    .option('--constraint <expr>', 'placement constraint, e.g. node.labels.zone==a (repeatable)', collect)
    .option('-e, --env <k=v>', 'environment variable (repeatable)', collect), 'create')))), 'create'), 'create'))
    .action(async (image: string, args: string[], o: LbFlags & UpdateFlags & HealthFlags & ResourceFlags & TaskFlags & FileFlags & PolicyFlags & { name: string; replicas?: string; runtime?: string; mode: string; publish?: string[]; network?: string[]; endpointMode: string; constraint?: string[]; env?: string[]; detach?: boolean; timeout: string }) => {
      if (o.mode !== 'replicated' && o.mode !== 'global') throw new MeshError('MESHD_BAD_ARGUMENT', `--mode must be replicated or global, got ${JSON.stringify(o.mode)}`);
      if (o.mode === 'global' && o.replicas !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', '--replicas cannot be used with --mode global');
      const runtime = o.runtime === undefined ? undefined : parseRuntime(o.runtime);
      const healthcheck = healthcheckFrom(o);
      const spec = {
        name: o.name, image, ...(runtime ? { runtime } : {}), ...(args.length ? { command: args } : {}), env: parseKv(o.env, '--env'),
        mode: o.mode === 'global' ? { global: {} } : { replicated: { replicas: o.replicas === undefined ? 1 : parseCount(o.replicas, '--replicas') } },
        endpointMode: o.endpointMode, ports: (o.publish ?? []).map(parsePublish), networks: (o.network ?? []).map(parseNetwork), constraints: o.constraint ?? [],
        ...(healthcheck ? { healthcheck } : {}),
        ...stopFrom(o),
        updateConfig: updateConfigFrom(o, 'update'), rollbackConfig: updateConfigFrom(o, 'rollback'),
        ...resourcesFrom(o),
        ...taskFieldsFrom(o),
        ...filesFrom(o),
        ...allowFromCreate(o),
        ...withLb(lbFrom(o)),
      };
      const since = Date.now();
      const s = await call<ServiceView>('POST', '/services', spec);
      process.stdout.write(`${s.id}\n`);
      if (!o.detach) await converge(call, s.id, o.timeout, { g: globals(), since });
    });

  svc
    .command('ls')
    .description('list services')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const list = await call<ServiceView[]>('GET', '/services');
      if (formatted(list, o.format)) return;
      printServiceList(list, o.quiet);
    });

  svc
    .command('ps')
    .description('tasks of a service, with history (older tasks of a slot shown with \\_)')
    .argument('<service>', 'name or id')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (ref: string, o: { quiet?: boolean; format?: string }) => {
      const list = await call<TaskView[]>('GET', `/tasks?service=${encodeURIComponent(ref)}`);
      if (formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((t) => `${t.id}\n`).join(''));
      const seen = new Set<string>();
      process.stdout.write(table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ADDRESSES', 'ERROR'], list.map((t) => {
        const short = t.name.slice(0, t.name.lastIndexOf('.'));
        const hist = seen.has(short);
        seen.add(short);
        return [t.id.slice(0, 12), `${hist ? ' \\_ ' : ''}${short}`, t.image, t.node, t.desiredState, `${stateWithHealth(t)} ${ago(t.updatedAt)}`,
          Object.entries(t.addresses).map(([n, ip]) => `${n}=${ip}`).join(',') || null, t.error ?? (t.state === 'pending' ? t.message : null)];
      })));
    });

  svc
    .command('inspect')
    .description('show services as JSON')
    .argument('<service...>', 'names or ids')
    .option('-f, --format <tpl>', 'json (default), or a template per service, e.g. \'{{json .ports}}\' or \'{{.name}}\'')
    .action(async (refs: string[], o: { format?: string }) => printFormatted(await Promise.all(refs.map(get)), o.format));

  svc
    .command('scale')
    .description('set the replicas of replicated services')
    .argument('<service=replicas...>', 'e.g. web=9')
    .option('-d, --detach', 'do not wait for convergence')
    .option('--timeout <d>', 'how long to wait for convergence', '120s')
    .action(async (pairs: string[], o: { detach?: boolean; timeout: string }) => {
      for (const [ref, n] of pairs.map(parseScale)) {
        const s = await get(ref);
        if (!s.spec.mode.replicated) throw new MeshError('MESHD_BAD_ARGUMENT', `service ${s.name} is global: it cannot be scaled`);
        const since = Date.now();
        await update(s, { ...s.spec, mode: { replicated: { replicas: n } } });
        process.stdout.write(`${s.name} scaled to ${n}\n`);
        if (!o.detach) await converge(call, s.id, o.timeout, { g: globals(), since });
      }
    });

  addCanaryOptions(addLbOptions(addPolicyOptions(addFileOptions(addUpdateOptions(addHealthOptions(addResourceOptions(addTaskOptions(svc
    .command('update')
    .description('change a service; task changes roll out per its update config')
    .argument('<service>', 'name or id')
    .option('--image <image>', 'new image')
    .option('--runtime <r>', RUNTIME_HELP)
    .option('--args <args...>', 'new command arguments')
    .option('--replicas <n>', 'number of tasks')
    .option('--env-add <k=v>', 'add or set an environment variable (repeatable)', collect)
    .option('--env-rm <k>', 'remove an environment variable (repeatable)', collect)
    .option('--publish-add <spec>', 'publish a port (repeatable)', collect)
    .option('--publish-rm <port>', 'unpublish a port, e.g. 8080 or 8080/udp (repeatable)', collect)
    .option('--network-add <net>', 'attach to a network: app, or name=app,alias=NAME (repeatable)', collect)
    .option('--network-rm <net>', 'detach from a network (repeatable)', collect)
    .option('--constraint-add <expr>', 'add a placement constraint (repeatable)', collect)
    .option('--constraint-rm <expr>', 'remove a placement constraint (repeatable)', collect)
    .option('--force', 'replace every task even if nothing changed'), 'update')))), 'update'), 'update')))
    .action(async (ref: string, o: CanaryFlags & LbFlags & UpdateFlags & HealthFlags & ResourceFlags & TaskFlags & FileFlags & PolicyFlags & { image?: string; runtime?: string; args?: string[]; replicas?: string; envAdd?: string[]; envRm?: string[]; publishAdd?: string[]; publishRm?: string[]; networkAdd?: string[]; networkRm?: string[]; constraintAdd?: string[]; constraintRm?: string[]; force?: boolean; detach?: boolean; timeout: string }) => {
      const canary = canaryPercent(o);
      if (o.canaryComplete) {
        const since = Date.now();
        const done = await call<ServiceView>('POST', `/services/${encodeURIComponent(ref)}/canary-complete`, {});
        process.stdout.write(`${done.name}\n`);
        if (!o.detach) await converge(call, done.id, o.timeout, { g: globals(), since });
        return;
      }
      const s = await get(ref);
      const spec: Spec = { ...s.spec, env: { ...s.spec.env } };
      if (o.image !== undefined) spec.image = o.image;
      if (o.runtime !== undefined) {
        const r = parseRuntime(o.runtime);
        if (r) spec.runtime = r;
        else delete spec.runtime;
      }
      if (o.args !== undefined) spec.command = o.args;
      if (o.replicas !== undefined) {
        if (!spec.mode.replicated) throw new MeshError('MESHD_BAD_ARGUMENT', `service ${s.name} is global: --replicas does not apply`);
        spec.mode = { replicated: { replicas: parseCount(o.replicas, '--replicas') } };
      }
      Object.assign(spec.env, parseKv(o.envAdd, '--env-add'));
      for (const k of o.envRm ?? []) delete spec.env[k];
      const rm = (o.publishRm ?? []).map(publishKey);
      spec.ports = [...spec.ports.filter((p) => !rm.some((r) => r.published === p.published && r.proto === p.proto)), ...(o.publishAdd ?? []).map(parsePublish)];
      if (o.networkAdd || o.networkRm) Object.assign(spec, editNetworks(spec, o.networkRm ?? [], (o.networkAdd ?? []).map(parseNetwork)));
      spec.constraints = [...spec.constraints.filter((c) => !(o.constraintRm ?? []).includes(c)), ...(o.constraintAdd ?? [])];
      const healthcheck = healthcheckFrom(o, spec.healthcheck as Record<string, unknown> | undefined);
      if (healthcheck) spec.healthcheck = healthcheck;
      Object.assign(spec, stopFrom(o));
      spec.updateConfig = updateConfigFrom(o, 'update', spec.updateConfig);
      spec.rollbackConfig = updateConfigFrom(o, 'rollback', spec.rollbackConfig);
      const res = resourcesFrom(o, spec as { resources?: { cpuMilli: number; memoryBytes: number }; limits?: { cpuMilli: number; memoryBytes: number } });
      spec.resources = res.resources;
      if (res.limits) spec.limits = res.limits;
      else delete spec.limits;
      const task = taskFieldsFrom(o, s.spec);
      delete spec.labels;
      delete spec.maxReplicasPerNode;
      Object.assign(spec, task, editFiles(s.spec, o));
      const allowFrom = allowFromUpdate(s.spec.allowFrom as string[] | undefined, o);
      if (allowFrom) spec.allowFrom = allowFrom;
      else delete spec.allowFrom;
      const lb = lbFrom(o, s.spec.lb);
      if (lb) spec.lb = lb;
      else delete spec.lb;
      const since = Date.now();
      await update(s, spec, o.force === true, canary);
      process.stdout.write(`${s.name}\n`);
      if (!o.detach) await converge(call, s.id, o.timeout, { g: globals(), since });
    });

  svc
    .command('rollback')
    .description('return to the previous spec (or reverse a running update)')
    .argument('<service>', 'name or id')
    .option('-d, --detach', 'do not wait for convergence')
    .option('--timeout <d>', 'how long to wait for convergence', '120s')
    .action(async (ref: string, o: { detach?: boolean; timeout: string }) => {
      const since = Date.now();
      const s = await call<ServiceView>('POST', `/services/${encodeURIComponent(ref)}/rollback`, {});
      process.stdout.write(`${s.name}\n`);
      if (!o.detach) await converge(call, s.id, o.timeout, { g: globals(), since });
    });

  svc
    .command('rm')
    .description('remove services (their tasks are drained and stopped)')
    .argument('<service...>', 'names or ids')
    .action(async (refs: string[]) => {
      for (const r of refs) {
        await call('DELETE', `/services/${encodeURIComponent(r)}`);
        process.stdout.write(`${r}\n`);
      }
    });
  svc.addCommand(logsCommand(globals, call));
  return svc;
}

function withLb(lb: Record<string, string> | undefined): { lb?: Record<string, string> } {
  return lb ? { lb } : {};
}
