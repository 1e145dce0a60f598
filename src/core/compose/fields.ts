/**
 * Path-aware readers for the Compose parser: every failure is a
 * MeshError('MESHD_BAD_ARGUMENT') whose message starts with the key path at fault
 * (`services.web.deploy.replicas: expected a whole number, got "three"`), so a person
 * can find the line without reading a stack trace. Pure: no I/O.
 */
import { MeshError } from '../errors.js';

export type Obj = Record<string, unknown>;

/** Throws the parser's one error shape: `<path>: <message>`, with the path in details. */
export function fail(path: string, message: string): never {
  throw new MeshError('MESHD_BAD_ARGUMENT', `${path || '(root)'}: ${message}`, { field: path });
}

/** `services.web` + `ports` → `services.web.ports`; indices are added by callers as `[i]`. */
export function at(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** A short, human description of a YAML value's type for "expected X, got Y" messages. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function asObj(v: unknown, path: string): Obj {
  if (!isObj(v)) fail(path, `expected a mapping, got ${describe(v)}`);
  return v;
}

export function asList(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `expected a list, got ${describe(v)}`);
  return v;
}

export function asString(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
  return v;
}

export function asBool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, `expected true or false, got ${describe(v)}`);
  return v;
}

/** A whole number in [min, max]; YAML may give it as a number or a decimal string ("3"). */
export function asWhole(v: unknown, path: string, min = 0, max = 2 ** 31 - 1): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) fail(path, `expected a whole number, got ${describe(v)}`);
  if (n < min || n > max) fail(path, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function asNumber(v: unknown, path: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) fail(path, `expected a number, got ${describe(v)}`);
  if (n < min || n > max) fail(path, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function asEnum<T extends string>(v: unknown, path: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(path, `expected one of ${allowed.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

/** A list of strings; a single string is NOT accepted (Compose does not either for these keys). */
export function asStringList(v: unknown, path: string): string[] {
  return asList(v, path).map((x, i) => asString(x, `${path}[${i}]`));
}

/** Edit distance (Levenshtein), for "did you mean" hints on unknown keys. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/**
 * Checks the keys of a mapping: `known` keys pass, `x-*` extension keys pass silently
 * (Compose spec); `unsupported` keys (valid Compose that meshd does not implement, e.g.
 * `build`, `secrets`) are refused with MESHD_UNSUPPORTED naming the key path — never accepted
 * and dropped, since a deploy that silently lacks a mount or a secret is worse than none.
 * Anything else is an unknown key (MESHD_BAD_ARGUMENT), with a "did you mean" hint when a
 * known key is at most 2 edits away.
 */
export function checkKeys(o: Obj, path: string, known: readonly string[], unsupported: readonly string[] = []): void {
  for (const k of Object.keys(o)) {
    if (known.includes(k) || k.startsWith('x-')) continue;
    if (unsupported.includes(k)) {
      throw new MeshError('MESHD_UNSUPPORTED', `${at(path, k)}: not supported by meshd (refused rather than ignored: remove it to deploy)`, { field: at(path, k) });
    }
    const near = known.map((c) => [c, editDistance(k, c)] as const).filter(([, d]) => d <= 2).sort((x, y) => x[1] - y[1])[0];
    fail(at(path, k), `unknown key${near ? ` (did you mean ${near[0]}?)` : ''}`);
  }
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Go/Compose durations → milliseconds, rounded to the nearest ms: `10s`, `1m30s`,
 * `1.5h`, `500ms`, `0`. A bare number is accepted only for 0 (Compose requires a unit
 * otherwise: a bare `10` would be 10 ns in Go, which nobody means).
 */
export function parseComposeDuration(v: unknown, path: string): number {
  if (v === 0 || v === '0') return 0;
  if (typeof v !== 'string') fail(path, `expected a duration like "10s" or "1m30s", got ${describe(v)}`);
  const s = v.trim();
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) fail(path, `expected a duration like "10s" or "1m30s", got ${describe(v)}`);
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (s.length === 0) fail(path, 'expected a duration like "10s" or "1m30s", got ""');
  const ms = Math.round(total);
  if (ms > 2 ** 31 - 1) fail(path, `duration too long: ${s}`);
  return ms;
}

/**
 * Splits a `command: "sh -c 'echo hi'"` string like a POSIX shell would split words
 * (Compose does the same with shlex): whitespace separates, '…' is literal, "…" allows
 * \" \\ \$ \` escapes, a backslash outside quotes escapes the next character. No
 * expansion of variables or globs.
 */
export function shellSplit(s: string, path: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) fail(path, 'unterminated single quote');
      cur += s.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`'.includes(s[j + 1]!)) j++;
        cur += s[j];
      }
      if (j >= s.length) fail(path, 'unterminated double quote');
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= s.length) fail(path, 'trailing backslash');
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
