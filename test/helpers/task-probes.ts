/**
 * Probes run inside a task's network namespace (`ip netns exec`, as root): a DNS question to the
 * agent's resolver at 127.0.0.11 and one HTTP GET with curl's own timing. Synchronous (spawnSync)
 * and bounded, so a waitFor can call them in its loop; they never throw on a failed probe, the
 * caller reads the exit code.
 */
import { inNs, type CliResult } from './cli.js';

/** `dig @127.0.0.11 +time=2 +tries=1 ARGS` in `netns`: one try of 2 s, the process killed after 10 s. */
export function digIn(netns: string, ...args: string[]): CliResult {
  return inNs(netns, ['dig', '@127.0.0.11', '+time=2', '+tries=1', ...args], 10_000);
}

/** The non-empty lines of a `dig +short` answer, trimmed and sorted (the order of records is not part of the answer). */
export function shortLines(r: CliResult): string[] {
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

export interface HttpProbe {
  /** curl's exit code: 0 answered, 7 refused (a reset), 28 timed out. */
  code: number;
  /** curl's own total time in ms, 2 decimals (process start excluded); NaN when curl printed none. */
  ms: number;
  body: string;
}

/**
 * One HTTP GET of `url` from `netns`: `curl -s -m 3 FLAGS` (e.g. `-6`), the process killed after 10 s.
 */
export function httpGet(netns: string, url: string, ...flags: string[]): HttpProbe {
  const r = inNs(netns, ['curl', '-s', '-m', '3', ...flags, '-w', '\n%{time_total}', url], 10_000);
  const lines = r.stdout.trimEnd().split('\n');
  return { code: r.code, ms: Number((Number(lines.pop() || 'NaN') * 1000).toFixed(2)), body: lines.join('\n') };
}
