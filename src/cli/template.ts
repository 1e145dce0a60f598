/**
 * `--format` for inspect commands, docker's way: `json` (the default, pretty JSON of the list)
 * or a template rendered once per object, one line each. The template language is the part of
 * Go's text/template people use with `docker inspect`: literal text, `{{.a.b}}` (a field path;
 * keys match case-insensitively, so docker's `{{.Name}}` reads `name`) and `{{json .a.b}}`.
 * Anything else is refused with MESHD_BAD_ARGUMENT, never printed as is.
 */
import { MeshError } from '../core/errors.js';
import { printJson } from './format.js';

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

/** `json`/absent: the list as JSON; `table` is refused (inspect has no table); else one rendered line per object. */
export function printFormatted(items: readonly unknown[], format: string | undefined): void {
  if (format === undefined || format === 'json') return printJson(items);
  if (!format.includes('{{')) throw new MeshError('MESHD_BAD_ARGUMENT', `unknown --format ${JSON.stringify(format)}: use json or a template like '{{json .ports}}'`);
  process.stdout.write(items.map((v) => `${renderTemplate(format, v)}\n`).join(''));
}
