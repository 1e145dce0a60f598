/**
 * A service's health check (docker's HEALTHCHECK / `--health-*` / compose `healthcheck`), as
 * stored in specs and carried in assignments. Normalized to docker's `Test` form so the docker
 * runtime hands it to the Engine unchanged and the netns runtime reads the same thing:
 *
 * - `test`: `['CMD', prog, ...args]` (argv) or `['CMD-SHELL', command]` (run by `sh -c`);
 *   absent = keep the image's own check (docker merges field by field with the image's);
 * - `intervalMs`, `timeoutMs`, `retries`, `startPeriodMs`: absent = the image's, else docker's
 *   defaults (30 s, 30 s, 3, 0);
 * - `disable: true` = no check at all, not even the image's (`--no-healthcheck`, Test NONE);
 *   it cannot be combined with any other field (docker refuses the same combination).
 *
 * Input is friendlier than storage: `test` may be a string (a shell command), a bare argv list,
 * or docker's prefixed list; `['NONE']` means disable. Bad values fail with MESHD_BAD_ARGUMENT
 * naming the field (`healthcheck.intervalMs`), through the service spec's parser.
 */
import { z } from 'zod';

export interface HealthcheckSpec {
  test?: string[] | undefined;
  intervalMs?: number | undefined;
  timeoutMs?: number | undefined;
  retries?: number | undefined;
  startPeriodMs?: number | undefined;
  disable?: boolean | undefined;
}

/** Docker's defaults for fields neither the spec nor the image sets. */
export const HEALTH_DEFAULTS = Object.freeze({ intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
/** Longest interval, timeout or start period accepted (24 h): longer is a typo, not a check. */
export const MAX_HEALTH_MS = 86_400_000;
export const MAX_HEALTH_RETRIES = 1000;

/** Input `test` → docker's prefixed form; throws a message (the schema turns it into an issue). */
export function normalizeTest(v: string | readonly string[]): string[] {
  if (typeof v === 'string') {
    if (!v.trim()) throw new Error('must not be empty');
    return ['CMD-SHELL', v];
  }
  const [head, ...rest] = v;
  if (head === undefined) throw new Error('must not be empty');
  if (head === 'NONE') {
    if (rest.length) throw new Error('NONE takes no arguments');
    return ['NONE'];
  }
  if (head === 'CMD') {
    if (!rest.length || !rest[0]) throw new Error('CMD needs a program');
    return ['CMD', ...rest];
  }
  if (head === 'CMD-SHELL') {
    if (rest.length !== 1 || !rest[0]!.trim()) throw new Error('CMD-SHELL takes exactly one command string');
    return ['CMD-SHELL', rest[0]!];
  }
  if (!head) throw new Error('the program must not be empty');
  return ['CMD', ...v];
}

const ms = (min: number) => z.number().int().min(min).max(MAX_HEALTH_MS);

export const healthcheckSchema = z.object({
  test: z.union([z.string().max(4096), z.array(z.string().max(4096)).max(256)]).optional(),
  intervalMs: ms(1).optional(),
  timeoutMs: ms(1).optional(),
  retries: z.number().int().min(1).max(MAX_HEALTH_RETRIES).optional(),
  startPeriodMs: ms(0).optional(),
  disable: z.boolean().optional(),
}).strict().transform((h, ctx): HealthcheckSpec => {
  let test: string[] | undefined;
  if (h.test !== undefined) {
    try {
      test = normalizeTest(h.test);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['test'], message: (e as Error).message });
      return z.NEVER;
    }
  }
  const disable = h.disable === true || test?.[0] === 'NONE';
  if (disable) {
    const other = (['intervalMs', 'timeoutMs', 'retries', 'startPeriodMs'] as const).find((k) => h[k] !== undefined)
      ?? (test && test[0] !== 'NONE' ? 'test' : undefined);
    if (other) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [other], message: 'cannot be combined with disable (--no-healthcheck)' });
      return z.NEVER;
    }
    return { disable: true };
  }
  const out: HealthcheckSpec = {};
  if (test) out.test = test;
  for (const k of ['intervalMs', 'timeoutMs', 'retries', 'startPeriodMs'] as const) if (h[k] !== undefined) out[k] = h[k];
  return out;
});

/** The stored (normalized) form, as assignments and task specs carry it. */
export const storedHealthcheckSchema = z.object({
  test: z.array(z.string().max(4096)).min(1).max(257).optional(),
  intervalMs: ms(1).optional(),
  timeoutMs: ms(1).optional(),
  retries: z.number().int().min(1).max(MAX_HEALTH_RETRIES).optional(),
  startPeriodMs: ms(0).optional(),
  disable: z.boolean().optional(),
}).strict();

/** What a runner needs: a command and complete timings (spec over docker's defaults). */
export interface HealthProbe {
  argv: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/**
 * The check a runner executes itself (netns runtime), or null when there is none: disabled,
 * or no `test` (the netns runtime has no image whose check could be inherited).
 */
export function probeOf(h: HealthcheckSpec | undefined): HealthProbe | null {
  if (!h || h.disable || !h.test || h.test[0] === 'NONE') return null;
  const argv = h.test[0] === 'CMD-SHELL' ? ['sh', '-c', h.test[1]!] : h.test.slice(1);
  return {
    argv,
    intervalMs: h.intervalMs ?? HEALTH_DEFAULTS.intervalMs,
    timeoutMs: h.timeoutMs ?? HEALTH_DEFAULTS.timeoutMs,
    retries: h.retries ?? HEALTH_DEFAULTS.retries,
    startPeriodMs: h.startPeriodMs ?? HEALTH_DEFAULTS.startPeriodMs,
  };
}

/** Docker Engine API `Config.Healthcheck` (durations in ns); unset fields inherit the image's. */
export interface DockerHealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
}

export function dockerHealthConfig(h: HealthcheckSpec | undefined): DockerHealthConfig | undefined {
  if (!h) return undefined;
  if (h.disable) return { Test: ['NONE'] };
  const ns = (v: number | undefined) => (v === undefined ? undefined : v * 1_000_000);
  const out: DockerHealthConfig = {};
  if (h.test) out.Test = [...h.test];
  if (h.intervalMs !== undefined) out.Interval = ns(h.intervalMs)!;
  if (h.timeoutMs !== undefined) out.Timeout = ns(h.timeoutMs)!;
  if (h.retries !== undefined) out.Retries = h.retries;
  if (h.startPeriodMs !== undefined) out.StartPeriod = ns(h.startPeriodMs)!;
  return Object.keys(out).length ? out : undefined;
}
