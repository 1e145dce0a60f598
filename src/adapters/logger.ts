import { pino, destination, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs (pino) to stderr; the composition root creates one and passes children down. */
export function createLogger(opts: { level: string; name: string; node?: string | undefined }): Logger {
  return pino({ name: opts.name, level: opts.level, base: { node: opts.node, pid: process.pid } }, destination(2));
}
