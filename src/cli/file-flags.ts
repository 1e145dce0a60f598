/**
 * `service create --secret/--config` and `service update --secret-add/--secret-rm/--config-add/
 * --config-rm` (docker's flags; core/spec/files.ts parses one value). Rotation is docker's:
 * `--secret-rm old --secret-add source=new,target=old` in one update replaces the tasks, and
 * the new tasks get the new file. The manager normalizes targets and checks the names exist.
 */
import type { Command } from 'commander';
import { parseFileRefFlag, type FileKind } from '../core/spec/files.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export interface FileFlags {
  secret?: string[];
  config?: string[];
  secretAdd?: string[];
  secretRm?: string[];
  configAdd?: string[];
  configRm?: string[];
}

const HELP = (kind: FileKind): string => `${kind} for the tasks: NAME or source=NAME,target=${kind === 'secret' ? 'FILE' : '/PATH'},uid=0,gid=0,mode=0${kind === 'secret' ? '400' : '444'} (repeatable)`;

export function addFileOptions(c: Command, phase: 'create' | 'update'): Command {
  if (phase === 'create') return c.option('--secret <ref>', HELP('secret'), collect).option('--config <ref>', HELP('config'), collect);
  return c
    .option('--secret-add <ref>', `add a ${HELP('secret')}`, collect)
    .option('--secret-rm <name>', 'remove a secret by name (repeatable)', collect)
    .option('--config-add <ref>', `add a ${HELP('config')}`, collect)
    .option('--config-rm <name>', 'remove a config by name (repeatable)', collect);
}

type Ref = ReturnType<typeof parseFileRefFlag>;

/** The spec's `secrets` / `configs` for create (absent when no flag is given). */
export function filesFrom(o: FileFlags): { secrets?: Ref[]; configs?: Ref[] } {
  return {
    ...(o.secret?.length ? { secrets: o.secret.map((v) => parseFileRefFlag('secret', v)) } : {}),
    ...(o.config?.length ? { configs: o.config.map((v) => parseFileRefFlag('config', v)) } : {}),
  };
}

/** The update: `-rm` names leave first, then `-add` refs join (docker's order). */
export function editFiles(spec: object, o: FileFlags): { secrets?: Ref[]; configs?: Ref[] } {
  const edit = (kind: FileKind, cur: unknown, rm: readonly string[] = [], add: readonly string[] = []): Ref[] => [
    ...((Array.isArray(cur) ? cur : []) as Ref[]).filter((r) => !rm.includes(r.source)),
    ...add.map((v) => parseFileRefFlag(kind, v)),
  ];
  const cur = spec as { secrets?: unknown; configs?: unknown };
  return { secrets: edit('secret', cur.secrets, o.secretRm, o.secretAdd), configs: edit('config', cur.configs, o.configRm, o.configAdd) };
}
