/**
 * Stop signals of tasks (`--stop-signal`): a name with or without `SIG` (any case) or a
 * number 1–64, as docker accepts them; which names are valid is decided in one place,
 * core/spec/stop.ts `isStopSignal` (the spec refuses a bad one at create). Shared by both runtimes.
 */
import { MeshError } from '../../core/errors.js';
import { isStopSignal } from '../../core/spec/stop.js';

/** Normalized signal: `SIGTERM`-style name or a number; MESHD_BAD_ARGUMENT otherwise. Default SIGTERM. */
export function stopSignalOf(signal: string | undefined): NodeJS.Signals | number {
  if (signal === undefined || signal === '') return 'SIGTERM';
  if (!isStopSignal(signal)) throw new MeshError('MESHD_BAD_ARGUMENT', `unknown stop signal ${JSON.stringify(signal)}`);
  if (/^\d{1,2}$/.test(signal)) return Number(signal);
  return `SIG${signal.toUpperCase().replace(/^SIG/, '')}` as NodeJS.Signals;
}
