/** Output helpers: docker-style aligned tables by default, JSON with --format json, or a template. */
import { MeshError } from '../core/errors.js';

export type OutputFormat = 'table' | 'json';

export function parseFormat(v: string | undefined): OutputFormat {
  if (v === undefined || v === 'table') return 'table';
  if (v === 'json') return 'json';
  throw new MeshError('MESHD_BAD_ARGUMENT', `unknown --format ${JSON.stringify(v)}: use table, json or a template like '{{.name}}'`);
}

export function table(headers: string[], rows: Array<Array<string | number | boolean | null | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/**
 * Templates, docker's way: rendered once per object, one line each. The language is the part
 * of Go's text/template people use with `docker inspect` / `docker ps --format`: literal text,
 * `{{.a.b}}` (a field path; keys match case-insensitively, so docker's `{{.Name}}` reads
 * `name`) and `{{json .a.b}}`. Anything else is refused with MESHD_BAD_ARGUMENT, never printed as is.
 */
export function isTemplate(format: string): boolean {
  return format.includes('{{');
}

function lookup(v: unknown, path: string, tpl: string): unknown {
  if (path === '.') return v;
  let cur = v;
  for (const part of path.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const o = cur as Record<string, unknown>;
    const k = Object.prototype.hasOwnProperty.call(o, part) ? part : Object.keys(o).find((x) => x.toLowerCase() === part.toLowerCase());
    if (k === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `--format ${JSON.stringify(tpl)}: no field ${JSON.stringify(part)} (have: ${Object.keys(o).join(', ')})`);
    cur = o[k];
  }
  return cur;
}

function text(v: unknown): string {
  if (v === null || v === undefined) return '<no value>';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Renders one object with a template (see the header). */
export function renderTemplate(tpl: string, v: unknown): string {
  let out = '';
  let pos = 0;
  const re = /\{\{\s*(.*?)\s*\}\}/g;
  for (let m = re.exec(tpl); m; m = re.exec(tpl)) {
    out += tpl.slice(pos, m.index);
    pos = re.lastIndex;
    const action = m[1]!;
    const j = /^json\s+(\.[A-Za-z0-9_.]*)$/.exec(action);
    if (j) out += JSON.stringify(lookup(v, j[1]!, tpl) ?? null);
    else if (/^\.[A-Za-z0-9_.]*$/.test(action)) out += text(lookup(v, action, tpl));
    else throw new MeshError('MESHD_BAD_ARGUMENT', `--format: unsupported template action {{${action}}} (use {{.field.path}} or {{json .field}})`);
  }
  return out + tpl.slice(pos);
}

/** Inspect commands: `json`/absent prints the list as JSON; a template prints one rendered line per object. */
export function printFormatted(items: readonly unknown[], format: string | undefined): void {
  if (format === undefined || format === 'json') return printJson(items);
  if (!isTemplate(format)) throw new MeshError('MESHD_BAD_ARGUMENT', `unknown --format ${JSON.stringify(format)}: use json or a template like '{{json .ports}}'`);
  process.stdout.write(items.map((v) => `${renderTemplate(format, v)}\n`).join(''));
}

/**
 * List commands: prints `v` for `--format json` (as JSON) or a template (one line per item
 * of a list, one line for an object) and returns true; false means "print the table".
 */
export function formatted(v: unknown, format: string | undefined): boolean {
  if (format !== undefined && isTemplate(format)) {
    const items = Array.isArray(v) ? v : [v];
    process.stdout.write(items.map((x) => `${renderTemplate(format, x)}\n`).join(''));
    return true;
  }
  if (parseFormat(format) !== 'json') return false;
  printJson(v);
  return true;
}
