/**
 * docker's container, restart and placement flags of `service create` / `service update`:
 * `--mount`, `--label`, `--container-label`, `--hostname`, `--workdir`, `--user`,
 * `--entrypoint`, `--dns-option`, `--read-only`, `--init`, `--restart-*`, `--placement-pref`,
 * `--replicas-max-per-node` (update: the `-add` / `-rm` forms of the lists). Pure shaping of
 * input: the manager validates the spec (paths, names, templates, what the runtime honours)
 * and answers with the field at fault.
 */
import type { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { shellSplit } from '../core/compose/fields.js';
import { parseBytes } from '../core/spec/units.js';
import { collect, parseKv } from './node-commands.js';
import { parseCount, parseDuration } from './service-flags.js';

export interface MountInput {
  type: 'bind' | 'volume' | 'tmpfs';
  source?: string;
  target: string;
  readOnly?: boolean;
  tmpfsSizeBytes?: number;
  tmpfsMode?: number;
}

function bool(v: string | undefined, what: string): boolean {
  if (v === undefined || v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: expected true or false, got ${JSON.stringify(v)}`);
}

/**
 * docker's `--mount` CSV: `type=bind|volume|tmpfs` (default volume), `source`/`src`,
 * `target`/`destination`/`dst`, `readonly`/`ro` (bare or `=true|false`), `tmpfs-size`
 * (`64m`), `tmpfs-mode` (octal, `1777`). Other docker keys (bind-propagation, volume-driver,
 * volume-opt, …) are refused naming the key.
 */
export function parseMount(s: string): MountInput {
  const out: Partial<MountInput> & { type: MountInput['type'] } = { type: 'volume' };
  for (const part of s.split(',')) {
    if (!part.trim()) continue;
    const i = part.indexOf('=');
    const k = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    const v = i < 0 ? undefined : part.slice(i + 1).trim();
    const need = (): string => {
      if (v === undefined || v === '') throw new MeshError('MESHD_BAD_ARGUMENT', `--mount: ${k} needs a value`);
      return v;
    };
    if (k === 'type') {
      const t = need();
      if (t !== 'bind' && t !== 'volume' && t !== 'tmpfs') throw new MeshError('MESHD_BAD_ARGUMENT', `--mount type must be bind, volume or tmpfs, got ${JSON.stringify(t)}`);
      out.type = t;
    } else if (k === 'source' || k === 'src') out.source = need();
    else if (k === 'target' || k === 'destination' || k === 'dst') out.target = need();
    else if (k === 'readonly' || k === 'ro') out.readOnly = bool(v, `--mount ${k}`);
    else if (k === 'tmpfs-size') out.tmpfsSizeBytes = parseBytes(need(), '--mount tmpfs-size');
    else if (k === 'tmpfs-mode') {
      if (!/^[0-7]{1,4}$/.test(need())) throw new MeshError('MESHD_BAD_ARGUMENT', `--mount tmpfs-mode must be octal, e.g. 1777, got ${JSON.stringify(v)}`);
      out.tmpfsMode = parseInt(v!, 8);
    } else throw new MeshError('MESHD_BAD_ARGUMENT', `--mount: unsupported key ${JSON.stringify(k)} (meshd takes type, source, target, readonly, tmpfs-size, tmpfs-mode)`);
  }
  if (!out.target) throw new MeshError('MESHD_BAD_ARGUMENT', `--mount ${JSON.stringify(s)}: target required`);
  return { ...out, target: out.target } as MountInput;
}

/** `--entrypoint "sh -c"` → words (docker splits it like a shell); `""` clears the image's. */
export function parseEntrypoint(s: string): string[] {
  return shellSplit(s, '--entrypoint');
}

/** `--placement-pref spread=node.labels.zone` → a preference (the manager checks the descriptor). */
export function parsePlacementPref(s: string): { spread: string } {
  const m = /^spread=(.+)$/.exec(s.trim());
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `--placement-pref: ${JSON.stringify(s)} is not spread=node.labels.KEY (the only strategy, as in docker)`);
  return { spread: m[1]!.trim() };
}

export interface TaskFlags {
  mount?: string[]; mountAdd?: string[]; mountRm?: string[];
  label?: string[]; labelAdd?: string[]; labelRm?: string[];
  containerLabel?: string[]; containerLabelAdd?: string[]; containerLabelRm?: string[];
  hostname?: string; workdir?: string; user?: string; entrypoint?: string;
  dnsOption?: string[]; dnsOptionAdd?: string[]; dnsOptionRm?: string[];
  readOnly?: boolean; init?: boolean;
  restartCondition?: string; restartDelay?: string; restartMaxAttempts?: string; restartWindow?: string;
  placementPref?: string[]; placementPrefAdd?: string[]; placementPrefRm?: string[];
  replicasMaxPerNode?: string;
}

/** The flags, on `create` or `update` (lists there as `-add` / `-rm`, booleans with `--no-` too). */
export function addTaskOptions(c: Command, phase: 'create' | 'update'): Command {
  const list = (name: string, arg: string, help: string) => {
    if (phase === 'create') c.option(`--${name} <${arg}>`, `${help} (repeatable)`, collect);
    else {
      c.option(`--${name}-add <${arg}>`, `add: ${help} (repeatable)`, collect);
      c.option(`--${name}-rm <key>`, `remove a ${name} (repeatable)`, collect);
    }
  };
  list('mount', 'spec', 'mount: type=bind|volume|tmpfs,source=SRC,target=/PATH[,readonly] (docker runtime; rm takes the target)');
  list('label', 'k=v', 'service label');
  list('container-label', 'k=v', 'container label (docker runtime)');
  list('dns-option', 'opt', 'resolver option, e.g. ndots:2 (docker runtime)');
  list('placement-pref', 'pref', 'placement preference: spread=node.labels.KEY');
  c.option('--hostname <tpl>', 'container hostname; templates {{.Service.Name}}, {{.Task.Slot}}, {{.Node.Hostname}}, … (docker runtime)')
    .option('-w, --workdir <dir>', 'working directory of the command')
    .option('-u, --user <user>', 'user[:group] or uid[:gid] (docker runtime)')
    .option('--entrypoint <cmd>', 'override the image\'s ENTRYPOINT ("" clears it)')
    .option('--read-only', 'mount the container\'s root filesystem read-only (docker runtime)')
    .option('--init', 'run an init inside the container that forwards signals and reaps processes (docker runtime)')
    .option('--restart-condition <c>', 'restart when the task ends: none|on-failure|any (default any)')
    .option('--restart-delay <d>', 'delay between restart attempts, e.g. 5s (default 5s)')
    .option('--restart-max-attempts <n>', 'maximum restarts before giving up (0 = unlimited)')
    .option('--restart-window <d>', 'window used to count restarts, e.g. 2m (0 = unbounded)')
    .option('--replicas-max-per-node <n>', 'maximum tasks of the service per node (0 = unlimited)');
  if (phase === 'update') c.option('--no-read-only', 'writable root filesystem again').option('--no-init', 'no init process');
  return c;
}

type Obj = Record<string, unknown>;

function editMap(base: unknown, set: Record<string, string>, rm: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = { ...(base as Record<string, string> | undefined) };
  for (const k of rm ?? []) delete out[k.split('=')[0]!];
  return Object.assign(out, set);
}

/**
 * Applies the flags to a spec (a fresh one on create, the stored one on update): returns the
 * changed fields `container`, `labels`, `restartPolicy`, `preferences`, `maxReplicasPerNode`.
 * Lists follow docker: `-rm` first, then `-add`; a mount is removed by its target.
 */
export function taskFieldsFrom(o: TaskFlags, base: Obj = {}): Obj {
  const c: Obj = { ...(base.container as Obj | undefined) };
  const mountsRm = new Set(o.mountRm ?? []);
  const mounts = [...((c.mounts as MountInput[] | undefined) ?? []).filter((m) => !mountsRm.has(m.target)), ...[...(o.mount ?? []), ...(o.mountAdd ?? [])].map(parseMount)];
  c.mounts = mounts;
  c.labels = editMap(c.labels, parseKv([...(o.containerLabel ?? []), ...(o.containerLabelAdd ?? [])], '--container-label'), o.containerLabelRm);
  const dnsRm = new Set(o.dnsOptionRm ?? []);
  c.dnsOptions = [...((c.dnsOptions as string[] | undefined) ?? []).filter((d) => !dnsRm.has(d)), ...(o.dnsOption ?? []), ...(o.dnsOptionAdd ?? [])];
  if (o.hostname !== undefined) c.hostname = o.hostname || undefined;
  if (o.workdir !== undefined) c.workdir = o.workdir || undefined;
  if (o.user !== undefined) c.user = o.user || undefined;
  if (o.entrypoint !== undefined) c.entrypoint = parseEntrypoint(o.entrypoint);
  if (o.readOnly !== undefined) c.readOnly = o.readOnly;
  if (o.init !== undefined) c.init = o.init;
  const out: Obj = { container: c };
  const labels = editMap(base.labels, parseKv([...(o.label ?? []), ...(o.labelAdd ?? [])], '--label'), o.labelRm);
  if (Object.keys(labels).length) out.labels = labels;
  const r: Obj = { ...(base.restartPolicy as Obj | undefined) };
  if (o.restartCondition !== undefined) r.condition = o.restartCondition;
  if (o.restartDelay !== undefined) r.delayMs = parseDuration(o.restartDelay, '--restart-delay');
  if (o.restartMaxAttempts !== undefined) r.maxAttempts = parseCount(o.restartMaxAttempts, '--restart-max-attempts');
  if (o.restartWindow !== undefined) r.windowMs = parseDuration(o.restartWindow, '--restart-window');
  out.restartPolicy = r;
  const prefRm = new Set((o.placementPrefRm ?? []).map((p) => parsePlacementPref(p).spread));
  out.preferences = [...((base.preferences as Array<{ spread: string }> | undefined) ?? []).filter((p) => !prefRm.has(p.spread)),
    ...[...(o.placementPref ?? []), ...(o.placementPrefAdd ?? [])].map(parsePlacementPref)];
  const max = o.replicasMaxPerNode !== undefined ? parseCount(o.replicasMaxPerNode, '--replicas-max-per-node') : (base.maxReplicasPerNode as number | undefined);
  if (max) out.maxReplicasPerNode = max;
  return out;
}
