import { pino, destination, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * syslog priority (sd-daemon(3) `<N>` prefix) of a pino level: trace/debug → 7 debug, info → 6,
 * warn → 4 warning, error → 3 err, fatal → 2 crit.
 */
export function syslogPriority(level: number): number {
  return level >= 60 ? 2 : level >= 50 ? 3 : level >= 40 ? 4 : level >= 30 ? 6 : 7;
}

/** `<N>` + the line, N from the line's `"level":` (pino writes it first). Lines without one pass as info. */
export function journalLine(line: string): string {
  const m = /^\{"level":(\d+)/.exec(line);
  return `<${syslogPriority(m ? Number(m[1]) : 30)}>${line}`;
}

/**
 * Structured JSON logs (pino), one line per event, to stdout; the composition root creates one
 * and passes children down. Under systemd (stdout is the journal: $JOURNAL_STREAM is set) each
 * line starts with its syslog priority `<N>`, which journald strips and stores as the entry's
 * PRIORITY, so `journalctl -u meshd -p warning` shows warnings and worse and errors are red.
 */
export function createLogger(opts: { level: string; name: string; node?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Logger {
  const out = destination(1);
  const stream: DestinationStream = env.JOURNAL_STREAM ? { write: (line: string) => out.write(journalLine(line)) } : out;
  return pino({ name: opts.name, level: opts.level, base: { node: opts.node, pid: process.pid } }, stream);
}
