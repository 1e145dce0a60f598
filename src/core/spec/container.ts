/**
 * What a task's container runs with beyond image and command (docker's
 * TaskTemplate.ContainerSpec, trimmed): mounts, container labels, hostname, working
 * directory, user, entrypoint, resolver options, read-only root filesystem and an init
 * process. Users reach it with docker's flags (`--mount`, `--container-label`, `--hostname`,
 * `--workdir`, `--user`, `--entrypoint`, `--dns-option`, `--read-only`, `--init`) and
 * Compose's keys (`volumes`, `labels`, `hostname`, `working_dir`, `user`, `entrypoint`,
 * `dns_opt`, `read_only`, `init`). Pure: schemas, the hostname template and the check of what
 * the netns runtime can honour (it refuses the rest with MESHD_UNSUPPORTED instead of dropping it).
 */
import { z } from 'zod';
import { MeshError } from '../errors.js';

export type MountType = 'bind' | 'volume' | 'tmpfs';
export const MOUNT_TYPES: readonly MountType[] = ['bind', 'volume', 'tmpfs'];

export interface MountSpec {
  type: MountType;
  /** bind: an absolute host path; volume: a volume name (absent: an anonymous volume); tmpfs: none. */
  source?: string | undefined;
  /** Absolute path inside the container. */
  target: string;
  readOnly?: boolean | undefined;
  /** tmpfs only: size in bytes (0/absent: the kernel's default, half the RAM). */
  tmpfsSizeBytes?: number | undefined;
  /** tmpfs only: file mode of the mount's root (e.g. 0o1777). */
  tmpfsMode?: number | undefined;
}

export interface ContainerConfig {
  mounts?: MountSpec[] | undefined;
  /** Labels on the task's container (docker's `--container-label`); `meshd.*` keys are reserved. */
  labels?: Record<string, string> | undefined;
  /** Hostname template: `{{.Service.Name}}`, `{{.Task.Slot}}`, `{{.Node.Hostname}}`, … (see expandHostname). */
  hostname?: string | undefined;
  /** Absolute working directory of the command. */
  workdir?: string | undefined;
  /** `user`, `uid`, `user:group` or `uid:gid`. */
  user?: string | undefined;
  /** Replaces the image's ENTRYPOINT (an empty list clears it, as docker's `--entrypoint ""`). */
  entrypoint?: string[] | undefined;
  /** resolv.conf options (`ndots:2`, `timeout:1`, `rotate`); ours default to `ndots:0`. */
  dnsOptions?: string[] | undefined;
  readOnly?: boolean | undefined;
  /** Runs an init (docker-init/tini) as PID 1 that reaps zombies and forwards signals. */
  init?: boolean | undefined;
}

const ABS_PATH_RE = /^\/[^\0]{0,4095}$/;
const VOLUME_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const CONTAINER_LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$/;
const DNS_OPTION_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}(:\d{1,5})?$/;
/** Placeholders of a hostname template (docker's service templates, the ones meshd knows). */
export const HOSTNAME_PLACEHOLDERS = ['.Service.Name', '.Service.ID', '.Task.Slot', '.Task.ID', '.Task.Name', '.Node.Hostname', '.Node.ID'] as const;
const PLACEHOLDER_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;

const mountSchema = z.object({
  type: z.enum(['bind', 'volume', 'tmpfs']),
  source: z.string().min(1).max(4096).optional(),
  target: z.string().regex(ABS_PATH_RE, 'must be an absolute path'),
  readOnly: z.boolean().optional(),
  tmpfsSizeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  tmpfsMode: z.number().int().min(0).max(0o7777).optional(),
}).strict().superRefine((m, ctx) => {
  const bad = (path: string, message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
  if (m.target === '/') bad('target', 'cannot mount over /');
  if (m.type === 'bind') {
    if (m.source === undefined) bad('source', 'a bind mount needs a source (an absolute host path)');
    else if (!ABS_PATH_RE.test(m.source)) bad('source', `bind source ${JSON.stringify(m.source)} must be an absolute path`);
  }
  if (m.type === 'volume' && m.source !== undefined && !VOLUME_NAME_RE.test(m.source)) bad('source', `invalid volume name ${JSON.stringify(m.source)} ([A-Za-z0-9][A-Za-z0-9_.-]*)`);
  if (m.type === 'tmpfs' && m.source !== undefined) bad('source', 'a tmpfs mount takes no source');
  if (m.type !== 'tmpfs' && (m.tmpfsSizeBytes !== undefined || m.tmpfsMode !== undefined)) bad('type', 'tmpfs-size and tmpfs-mode need type=tmpfs');
});

/** A hostname template: known placeholders only, and what is left is hostname characters. */
const hostnameSchema = z.string().min(1).max(253).superRefine((s, ctx) => {
  const rest = s.replace(PLACEHOLDER_RE, (all, name: string) => {
    if (!(HOSTNAME_PLACEHOLDERS as readonly string[]).includes(name)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unknown template ${all} (known: ${HOSTNAME_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})` });
    }
    return 'x';
  });
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(rest)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${JSON.stringify(s)} is not a hostname ([A-Za-z0-9.-], not starting or ending with - or .)` });
});

export const containerConfigSchema = z.object({
  mounts: z.array(mountSchema).max(64).optional(),
  labels: z.record(z.string().regex(CONTAINER_LABEL_RE, 'invalid label key').refine((k) => !k.startsWith('meshd.'), 'meshd.* labels are reserved'), z.string().max(4096))
    .refine((o) => Object.keys(o).length <= 256, 'at most 256 labels').optional(),
  hostname: hostnameSchema.optional(),
  workdir: z.string().regex(ABS_PATH_RE, 'must be an absolute path').optional(),
  user: z.string().regex(USER_RE, 'must be USER, UID, USER:GROUP or UID:GID').optional(),
  entrypoint: z.array(z.string().max(4096)).max(64).optional(),
  dnsOptions: z.array(z.string().regex(DNS_OPTION_RE, 'must look like ndots:2, timeout:1 or rotate')).max(16).optional(),
  readOnly: z.boolean().optional(),
  init: z.boolean().optional(),
}).strict().superRefine((c, ctx) => {
  const seen = new Set<string>();
  (c.mounts ?? []).forEach((m, i) => {
    if (seen.has(m.target)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['mounts', i, 'target'], message: `duplicate mount point ${m.target}` });
    seen.add(m.target);
  });
});

/** Service labels (docker's `--label`, Compose `deploy.labels`): on the service, not its containers. */
export const serviceLabelsSchema = z.record(z.string().regex(CONTAINER_LABEL_RE, 'invalid label key'), z.string().max(4096))
  .refine((o) => Object.keys(o).length <= 256, 'at most 256 labels');

/** Drops absent and empty parts, so a spec that sets nothing has no `container` and compares equal. */
export function normalizeContainer(c: ContainerConfig | undefined): ContainerConfig | undefined {
  if (!c) return undefined;
  const out: ContainerConfig = {};
  if (c.mounts?.length) out.mounts = c.mounts;
  if (c.labels && Object.keys(c.labels).length) out.labels = c.labels;
  if (c.hostname !== undefined) out.hostname = c.hostname;
  if (c.workdir !== undefined) out.workdir = c.workdir;
  if (c.user !== undefined) out.user = c.user;
  if (c.entrypoint !== undefined) out.entrypoint = c.entrypoint;
  if (c.dnsOptions?.length) out.dnsOptions = c.dnsOptions;
  if (c.readOnly) out.readOnly = true;
  if (c.init) out.init = true;
  return Object.keys(out).length ? out : undefined;
}

export interface HostnameContext {
  serviceName: string;
  serviceId: string;
  taskId: string;
  taskName: string;
  /** Replicated: the slot; global tasks have none (docker renders the node id there too, we render ""). */
  slot?: number | undefined;
  nodeHostname: string;
  nodeId: string;
}

/**
 * Renders a (validated) hostname template for one task: `web-{{.Task.Slot}}` → `web-2`. An
 * empty value at an edge (a global task has no slot) leaves no `-` or `.` there, and an empty
 * result falls back to the service name, so the result is always a valid hostname.
 */
export function expandHostname(tpl: string, c: HostnameContext): string {
  const v: Record<string, string> = {
    '.Service.Name': c.serviceName, '.Service.ID': c.serviceId, '.Task.ID': c.taskId, '.Task.Name': c.taskName,
    '.Task.Slot': c.slot === undefined ? '' : String(c.slot), '.Node.Hostname': c.nodeHostname, '.Node.ID': c.nodeId,
  };
  // A value with characters a hostname cannot hold (a node named `build_1`) gets `-` there:
  // the rendered name must pass the assignment's schema, or the node would get no assignment.
  const h = tpl.replace(PLACEHOLDER_RE, (all, name: string) => (v[name] ?? all).replace(/[^A-Za-z0-9.-]/g, '-')).slice(0, 253).replace(/^[-.]+|[-.]+$/g, '');
  return h || c.serviceName;
}

/** The flag (and Compose key) of each container setting, for messages. */
const FLAG: Record<keyof ContainerConfig, string> = {
  mounts: '--mount (compose volumes)', labels: '--container-label (compose labels)', hostname: '--hostname', workdir: '--workdir (compose working_dir)',
  user: '--user', entrypoint: '--entrypoint', dnsOptions: '--dns-option (compose dns_opt)', readOnly: '--read-only (compose read_only)', init: '--init',
};
/**
 * What the netns runtime honours: `entrypoint` (it is prepended to the command, there is no
 * image), `workdir` (the process's current directory) and bind / tmpfs mounts (made in the
 * task's own mount namespace before its program starts: adapters/runtime/netns-mounts.ts). A
 * task there is a host process sharing the host's filesystem, users and UTS namespace, so the
 * rest has no meaning — nor has a named volume (there is no volume driver).
 */
const NETNS_SUPPORTED: ReadonlySet<keyof ContainerConfig> = new Set(['entrypoint', 'workdir', 'mounts']);

/** Throws MESHD_UNSUPPORTED naming the setting and the runtime when netns cannot honour it. */
export function checkNetnsContainer(service: string, c: ContainerConfig | undefined): void {
  for (const m of c?.mounts ?? []) {
    if (m.type !== 'volume') continue;
    throw new MeshError('MESHD_UNSUPPORTED', `service ${service}: --mount type=volume (compose named volumes) is not supported by the netns runtime (bind and tmpfs are; or use --runtime docker)`, { runtime: 'netns', field: 'container.mounts' });
  }
  for (const k of Object.keys(normalizeContainer(c) ?? {}) as Array<keyof ContainerConfig>) {
    if (NETNS_SUPPORTED.has(k)) continue;
    throw new MeshError('MESHD_UNSUPPORTED', `service ${service}: ${FLAG[k]} is not supported by the netns runtime (a task there is a host process; use --runtime docker)`, { runtime: 'netns', field: `container.${k}` });
  }
}
