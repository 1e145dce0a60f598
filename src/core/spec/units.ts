/**
 * docker's spellings of resource amounts, shared by the CLI flags and the Compose parser:
 * CPUs as a decimal (`0.5` → 500 milli-CPUs; docker's NanoCPUs at milli precision) and
 * memory with binary units (docker's RAMInBytes: `64m`, `1g`, `512MiB`, `50M`, `1024`).
 * Pure; failures are MESHD_BAD_ARGUMENT naming `what`.
 */
import { MeshError } from '../errors.js';

/** `0.5` → 500 milli-CPUs. Accepts a number (Compose `cpus: 0.5`) or its text. */
export function parseCpus(v: string | number, what: string): number {
  const t = typeof v === 'number' ? String(v) : v.trim();
  if (!/^\d+(\.\d+)?$/.test(t)) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${JSON.stringify(v)}: expected a number of CPUs, e.g. 0.5 or 2`, { field: what });
  const milli = Math.round(Number(t) * 1000);
  if (!Number.isSafeInteger(milli) || milli > 2 ** 31 - 1) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${JSON.stringify(v)}: too large`, { field: what });
  if (milli === 0 && Number(t) > 0) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${JSON.stringify(v)}: below 0.001 CPU`, { field: what });
  return milli;
}

const UNIT: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker's RAMInBytes (binary units): `64m`, `1g`, `1.5GiB`, `512MB`, `1024`. */
export function parseBytes(v: string | number, what: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$/i.exec(typeof v === 'number' ? String(v) : v.trim());
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${JSON.stringify(v)}: expected a size, e.g. 64m, 1g or 512MiB`, { field: what });
  const n = Math.round(Number(m[1]) * UNIT[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(n)) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${JSON.stringify(v)}: too large`, { field: what });
  return n;
}
