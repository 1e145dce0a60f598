/**
 * A service's stop settings (docker's `--stop-grace-period`, `--stop-signal`; Compose
 * `stop_grace_period`, `stop_signal`): the signal that asks a task to stop, and how long it
 * gets before SIGKILL. Pure: validated where specs are validated, so a bad signal is refused at
 * `service create`, not discovered when a task is stopped.
 */
import { z } from 'zod';

/**
 * Linux signal names (without SIG) that both runtimes can send (Node's os.constants.signals has
 * each; real-time signals are given by number, 34–64).
 */
const NAMES = new Set(['HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'IOT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE',
  'ALRM', 'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH',
  'IO', 'POLL', 'PWR', 'SYS']);

/** True for `SIGTERM`, `term`, `15`: a name with or without SIG (any case) or 1–64. */
export function isStopSignal(s: string): boolean {
  if (/^\d{1,2}$/.test(s)) return Number(s) >= 1 && Number(s) <= 64;
  const n = s.toUpperCase().replace(/^SIG/, '');
  return NAMES.has(n);
}

/** Longest stop grace a service may ask for (docker has none; an hour bounds a drain). */
export const MAX_STOP_GRACE_MS = 3_600_000;

export const stopSignalSchema = z.string().max(16).refine(isStopSignal, (s) => ({ message: `unknown stop signal ${JSON.stringify(s)}` }));
export const stopGraceSchema = z.number().int().min(0).max(MAX_STOP_GRACE_MS);
