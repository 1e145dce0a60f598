/**
 * Stop signals of tasks (`--stop-signal`): a name with or without `SIG` (any case) or a
 * number 1–64, as docker accepts them. Pure; shared by both runtimes.
 */
import { constants as osConstants } from 'node:os';
import { MeshError } from '../../core/errors.js';

/** Normalized signal: `SIGTERM`-style name or a number; MESHD_BAD_ARGUMENT otherwise. Default SIGTERM. */
export function stopSignalOf(signal: string | undefined): NodeJS.Signals | number {
  if (signal === undefined || signal === '') return 'SIGTERM';
  if (/^\d{1,2}$/.test(signal) && Number(signal) > 0 && Number(signal) < 65) return Number(signal);
  const name = (signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in osConstants.signals)) throw new MeshError('MESHD_BAD_ARGUMENT', `unknown stop signal ${JSON.stringify(signal)}`);
  return name;
}

