/**
 * Generates the documented daemon config from the one schema (src/core/config.ts), so the
 * example cannot drift from what meshd accepts (issue 16 §2):
 * - native-scripts/meshd.example.json: every key at its default (the two required keys with
 *   example values), a valid /etc/meshd/meshd.json to start from (`meshd --check-config` passes);
 * - native-scripts/meshd.example.md: every key with its type, default, unit and the schema's
 *   doc comment (keys without a default say what their absence means).
 * Types, defaults and bounds come from the zod schema; descriptions from the doc comments above
 * each key in config.ts (read with the TypeScript parser). test/unit/config-doc.test.ts fails
 * when the committed files differ from a fresh generation: run `npm run gen:config-doc`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { z } from 'zod';
import { agentConfigSchema } from '../src/core/config.js';
import { BOUNDS, GOSSIP_PRESETS } from '../src/core/gossip/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CONFIG_SOURCE = join(ROOT, 'src', 'core', 'config.ts');
export const GOSSIP_SOURCE = join(ROOT, 'src', 'core', 'gossip', 'config.ts');
export const EXAMPLE_JSON = join(ROOT, 'native-scripts', 'meshd.example.json');
export const EXAMPLE_MD = join(ROOT, 'native-scripts', 'meshd.example.md');

/** Values for the keys that have no default (documentation addresses, RFC 5737). */
const EXAMPLE_VALUES: Record<string, unknown> = { nodeName: 'node1', advertiseAddr: '192.0.2.10' };
/** Units of keys whose name does not carry one. */
const UNIT_OF: Record<string, string> = { 'dns.maxUdpPayload': 'bytes', 'gossip.bindPort': 'port' };

export interface KeyDoc {
  path: string;
  type: string;
  default: unknown;
  hasDefault: boolean;
  required: boolean;
  unit: string;
  doc: string;
}

/** Doc comments of every key of `agentConfigSchema`, by dotted path. */
export function readDocComments(source: string): Map<string, string> {
  const sf = ts.createSourceFile('config.ts', source, ts.ScriptTarget.ES2022, true);
  const out = new Map<string, string>();
  const firstObjectCall = (n: ts.Node): ts.ObjectLiteralExpression | undefined => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.name.text === 'object' && n.arguments[0] && ts.isObjectLiteralExpression(n.arguments[0])) return n.arguments[0];
    return ts.forEachChild(n, firstObjectCall);
  };
  const walk = (obj: ts.ObjectLiteralExpression, prefix: string): void => {
    for (const p of obj.properties) {
      if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) continue;
      const path = prefix + p.name.text;
      const ranges = ts.getLeadingCommentRanges(source, p.getFullStart()) ?? [];
      const jsdoc = ranges.map((r) => source.slice(r.pos, r.end)).filter((c) => c.startsWith('/**')).pop();
      if (jsdoc) out.set(path, jsdoc.replace(/^\/\*\*|\*\/$/g, '').split('\n').map((l) => l.replace(/^\s*\* ?/, '').trim()).join(' ').replace(/\s+/g, ' ').trim());
      const inner = firstObjectCall(p.initializer);
      if (inner) walk(inner, `${path}.`);
    }
  };
  ts.forEachChild(sf, (n) => {
    if (!ts.isVariableStatement(n)) return;
    for (const d of n.declarationList.declarations) {
      if (ts.isIdentifier(d.name) && d.name.text === 'agentConfigSchema' && d.initializer) {
        const obj = firstObjectCall(d.initializer);
        if (obj) walk(obj, '');
      }
    }
  });
  return out;
}

function unitOf(path: string): string {
  const key = path.split('.').pop()!;
  if (UNIT_OF[path]) return UNIT_OF[path]!;
  if (/Ms$/.test(key)) return 'ms';
  if (/(Seconds|Sec)$/.test(key)) return 's';
  if (/Bytes$/.test(key)) return 'bytes';
  return '';
}

/** Human type of a zod schema (bounds and enum values included). */
function typeOf(s: z.ZodTypeAny): string {
  if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) return typeOf(s._def.innerType as z.ZodTypeAny);
  if (s instanceof z.ZodEffects) return typeOf(s._def.schema as z.ZodTypeAny);
  if (s instanceof z.ZodEnum) return (s.options as string[]).map((o) => `"${o}"`).join(' \\| ');
  if (s instanceof z.ZodNumber) {
    const min = s.minValue;
    const max = s.maxValue;
    return `${s.isInt ? 'integer' : 'number'}${min != null || max != null ? ` ${min ?? '−∞'}–${max ?? '∞'}` : ''}`;
  }
  if (s instanceof z.ZodString) return 'string';
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodArray) return `array of ${typeOf(s.element as z.ZodTypeAny)}`;
  if (s instanceof z.ZodRecord) return `object of ${typeOf(s._def.valueType as z.ZodTypeAny)}`;
  if (s instanceof z.ZodObject) return 'object';
  return s.constructor.name;
}

const unwrap = (s: z.ZodTypeAny): z.ZodTypeAny =>
  s instanceof z.ZodDefault || s instanceof z.ZodOptional ? unwrap(s._def.innerType as z.ZodTypeAny) : s instanceof z.ZodEffects ? unwrap(s._def.schema as z.ZodTypeAny) : s;

/** Every key of the schema, depth first, in declaration order. Throws when a key has no doc comment. */
export function describeKeys(docs: Map<string, string>): KeyDoc[] {
  const out: KeyDoc[] = [];
  const walk = (obj: z.AnyZodObject, prefix: string): void => {
    for (const [k, s] of Object.entries(obj.shape as Record<string, z.ZodTypeAny>)) {
      const path = prefix + k;
      const inner = unwrap(s);
      const hasDefault = s instanceof z.ZodDefault;
      const doc = docs.get(path);
      // Every key is documented where it is declared; the doc cannot be made up here.
      if (doc === undefined && !(inner instanceof z.ZodObject)) throw new Error(`config key ${path} has no doc comment in src/core/config.ts`);
      if (inner instanceof z.ZodObject) {
        out.push({ path, type: 'object', default: undefined, hasDefault, required: !hasDefault && !s.isOptional(), unit: '', doc: doc ?? '' });
        walk(inner, `${path}.`);
        continue;
      }
      out.push({
        path, type: typeOf(s), default: hasDefault ? (s._def.defaultValue as () => unknown)() : undefined, hasDefault,
        required: !hasDefault && !s.isOptional(), unit: unitOf(path), doc: doc!,
      });
    }
  };
  walk(agentConfigSchema, '');
  return out;
}

/** The example config: every defaulted key at its default, required keys at example values. */
export function exampleConfig(keys: KeyDoc[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const k of keys) {
    if (k.type === 'object') continue;
    if (!k.hasDefault && !k.required) continue;
    const parts = k.path.split('.');
    let o = root;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1]!] = k.required ? EXAMPLE_VALUES[k.path] : k.default;
  }
  return root;
}

/** Doc comments of the members of `interface GossipConfig` (the names `gossip.overrides` accepts). */
export function readGossipDocs(source: string): Map<string, string> {
  const sf = ts.createSourceFile('gossip-config.ts', source, ts.ScriptTarget.ES2022, true);
  const out = new Map<string, string>();
  ts.forEachChild(sf, (n) => {
    if (!ts.isInterfaceDeclaration(n) || n.name.text !== 'GossipConfig') return;
    for (const m of n.members) {
      if (!m.name || !ts.isIdentifier(m.name)) continue;
      const jsdoc = (ts.getLeadingCommentRanges(source, m.getFullStart()) ?? []).map((r) => source.slice(r.pos, r.end)).filter((c) => c.startsWith('/**')).pop();
      if (jsdoc) out.set(m.name.text, jsdoc.replace(/^\/\*\*|\*\/$/g, '').split('\n').map((l) => l.replace(/^\s*\* ?/, '').trim()).join(' ').replace(/\s+/g, ' ').trim());
    }
  });
  return out;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(keys: KeyDoc[], gossipDocs: Map<string, string>): string {
  const lines = [
    '# /etc/meshd/meshd.json — every key',
    '',
    'Generated from the config schema (`src/core/config.ts`) by `npm run gen:config-doc`; do not edit by hand.',
    '`meshd.example.json` next to this file holds every key at its default; `meshd --check-config FILE` validates',
    'a config and prints the values meshd will run with (derived ones included). Command-line flags',
    '(`meshd --help`) override the file. Unknown keys are refused.',
    '',
    '| key | type | default | unit | description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const k of keys) {
    const dflt = k.type === 'object' ? '' : k.required ? '**required**' : k.hasDefault ? `\`${JSON.stringify(k.default)}\`` : '(absent)';
    lines.push(`| \`${k.path}\` | ${k.type === 'object' ? 'object' : k.type} | ${dflt} | ${k.unit} | ${cell(k.doc)} |`);
  }
  lines.push(
    '',
    '## `gossip.overrides`',
    '',
    'Each gossip parameter of the chosen `gossip.preset`, overridable by name (an integer within the bounds;',
    '`probeTimeoutMs` must stay below `probeIntervalMs`). The preset columns are the values used when not overridden;',
    '`lan` is memberlist\'s LAN configuration, the reference.',
    '',
    '| key | bounds | lan | wan | local | unit | description |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const [k, [min, max]] of Object.entries(BOUNDS) as Array<[keyof typeof BOUNDS, readonly [number, number]]>) {
    const doc = gossipDocs.get(k);
    if (doc === undefined) throw new Error(`gossip parameter ${k} has no doc comment in src/core/gossip/config.ts`);
    lines.push(`| \`gossip.overrides.${k}\` | ${min}–${max} | ${GOSSIP_PRESETS.lan[k]} | ${GOSSIP_PRESETS.wan[k]} | ${GOSSIP_PRESETS.local[k]} | ${unitOf(k)} | ${cell(doc)} |`);
  }
  return lines.join('\n') + '\n';
}

export function renderConfigDoc(source = readFileSync(CONFIG_SOURCE, 'utf8'), gossipSource = readFileSync(GOSSIP_SOURCE, 'utf8')): { json: string; md: string } {
  const keys = describeKeys(readDocComments(source));
  return { json: JSON.stringify(exampleConfig(keys), null, 2) + '\n', md: renderMarkdown(keys, readGossipDocs(gossipSource)) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { json, md } = renderConfigDoc();
  writeFileSync(EXAMPLE_JSON, json);
  writeFileSync(EXAMPLE_MD, md);
  process.stdout.write(`wrote ${EXAMPLE_JSON} and ${EXAMPLE_MD}\n`);
}
