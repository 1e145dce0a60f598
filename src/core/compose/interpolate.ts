/**
 * Compose variable interpolation, applied to every string VALUE of the parsed file (not to
 * keys), as `docker stack deploy` does before anything else:
 *   `$$` → a literal `$` (how a shell command in `command:` keeps its own `$VAR`),
 *   `$VAR` / `${VAR}` → the variable, or "" with a warning when unset,
 *   `${VAR:-def}` (unset or empty → def), `${VAR-def}` (unset → def),
 *   `${VAR:?msg}` / `${VAR?msg}` → error naming the key when unset (or empty for `:?`),
 *   `${VAR:+alt}` / `${VAR+alt}` → alt when set (and non-empty for `:+`), else "".
 * Defaults are not themselves interpolated (nesting is not supported). The lookup is
 * injected (the CLI passes its environment), so this stays pure.
 */
import { fail } from './fields.js';

export type EnvLookup = (name: string) => string | undefined;

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
const TOKEN = new RegExp(`\\$(?:(\\$)|(${NAME})|\\{(${NAME})(?:(:?[-?+])([^}]*))?\\}|(\\{[^}]*\\}?))`, 'g');

/** One string. `path` names the key for errors and warnings. */
export function interpolateString(s: string, path: string, env: EnvLookup, warnings: string[]): string {
  if (!s.includes('$')) return s;
  return s.replace(TOKEN, (whole, dollar: string | undefined, bare: string | undefined, braced: string | undefined, op: string | undefined, arg: string | undefined, bad: string | undefined) => {
    if (dollar) return '$';
    if (bad !== undefined) fail(path, `invalid interpolation ${JSON.stringify(whole)} (use $$ for a literal $)`);
    const name = (bare ?? braced)!;
    const v = env(name);
    const empty = v === undefined || v === '';
    switch (op) {
      case undefined:
        if (v === undefined) warnings.push(`${path}: variable ${name} is not set, using ""`);
        return v ?? '';
      case ':-': return empty ? arg! : v;
      case '-': return v === undefined ? arg! : v;
      case ':?': if (empty) fail(path, `required variable ${name} is ${v === undefined ? 'not set' : 'empty'}${arg ? `: ${arg}` : ''}`); return v;
      case '?': if (v === undefined) fail(path, `required variable ${name} is not set${arg ? `: ${arg}` : ''}`); return v;
      case ':+': return empty ? '' : arg!;
      case '+': return v === undefined ? '' : arg!;
      default: return fail(path, `invalid interpolation ${JSON.stringify(whole)}`);
    }
  });
}

/** Deep copy of a parsed YAML value with every string value interpolated. */
export function interpolate(v: unknown, env: EnvLookup, warnings: string[], path = ''): unknown {
  if (typeof v === 'string') return interpolateString(v, path || '(root)', env, warnings);
  if (Array.isArray(v)) return v.map((x, i) => interpolate(x, env, warnings, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      // own-property define: a `__proto__` key stays a plain key (the parser rejects it later)
      Object.defineProperty(out, k, { value: interpolate(x, env, warnings, path ? `${path}.${k}` : k), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}
