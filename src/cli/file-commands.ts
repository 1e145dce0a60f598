/**
 * `netctl secret ...` and `netctl config ...` (docker secret/config create/ls/inspect/rm). The
 * payload is read from a file or stdin (`-`), never from argv (ps and shell history would show
 * it), bounded to swarm's 500 KB, and sent base64 in the request body to the manager, which
 * seals it in the store (src/manager/control/file-objects.ts).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import type { FileKind } from '../core/spec/files.js';
import type { GlobalOpts } from './context.js';
import { managerCall } from './cluster-commands.js';
import { formatted, printFormatted, table } from './format.js';
import { ago } from './time-ago.js';

/** swarm's limit (the manager checks it too). */
const MAX_BYTES = 500 * 1024;

interface FileView {
  id: string;
  name: string;
  size: number;
  createdAt: string;
  updatedAt: string;
  labels: Record<string, string>;
}

/** Reads the payload from FILE or stdin (`-`); refuses empty and over-limit payloads. */
export function readPayload(kind: FileKind, src: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(src === '-' ? 0 : src);
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `cannot read the ${kind} from ${src === '-' ? 'stdin' : src}: ${(e as Error).message}`);
  }
  if (data.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} data must not be empty (${src === '-' ? 'stdin' : src})`);
  if (data.length > MAX_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} data is ${data.length} bytes: at most ${MAX_BYTES} (500 KB)`);
  return data;
}

/** `-l k=v` (repeatable). */
function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    const k = i < 0 ? l : l.slice(0, i);
    if (!k) throw new MeshError('MESHD_BAD_ARGUMENT', `--label ${JSON.stringify(l)}: empty key`);
    out[k] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function fileCommand(kind: FileKind, globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  const base = `/${kind}s`;
  const cmd = new Command(kind).description(kind === 'secret'
    ? 'secrets of the cluster (sealed at rest; only nodes running a task that uses one get it, on a tmpfs)'
    : 'configs of the cluster (files for services, mounted read-only)');
  cmd
    .command('create')
    .description(`create a ${kind} from FILE, or from stdin with - (never from the command line)`)
    .argument('<name>', `${kind} name`)
    .argument('<file>', 'file to read, or - for stdin')
    .option('-l, --label <key=value>', 'label (repeatable)', collect, [])
    .action(async (name: string, file: string, o: { label: string[] }) => {
      const data = readPayload(kind, file);
      const r = await call<{ id: string }>('POST', base, { name, data: data.toString('base64'), labels: parseLabels(o.label) });
      process.stdout.write(`${r.id}\n`);
    });
  cmd
    .command('ls')
    .description(`list ${kind}s`)
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const list = await call<FileView[]>('GET', base);
      if (formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((s) => `${s.id}\n`).join(''));
      const now = Date.now();
      process.stdout.write(table(['ID', 'NAME', 'CREATED', 'UPDATED'], list.map((s) => [s.id.slice(0, 24), s.name, ago(s.createdAt, now), ago(s.updatedAt, now)])));
    });
  cmd
    .command('inspect')
    .description(`show ${kind}s as JSON${kind === 'secret' ? ' (never the payload)' : ''}`)
    .argument(`<${kind}...>`, 'names or ids')
    .option('-f, --format <tpl>', `json (default), or a template per ${kind}, e.g. '{{.name}}'`)
    .action(async (refs: string[], o: { format?: string }) => {
      printFormatted(await Promise.all(refs.map((r) => call('GET', `${base}/${encodeURIComponent(r)}`))), o.format);
    });
  cmd
    .command('rm')
    .description(`remove ${kind}s (refused while a service uses one, naming the services)`)
    .argument(`<${kind}...>`, 'names or ids')
    .action(async (refs: string[]) => {
      for (const r of refs) {
        await call('DELETE', `${base}/${encodeURIComponent(r)}`);
        process.stdout.write(`${r}\n`);
      }
    });
  return cmd;
}

export const secretCommand = (g: () => GlobalOpts): Command => fileCommand('secret', g);
export const configCommand = (g: () => GlobalOpts): Command => fileCommand('config', g);
