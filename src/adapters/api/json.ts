/**
 * Safe JSON for the API edge: bounded size, prototype-pollution keys rejected,
 * every failure a MeshError with a stable code (→ 4xx, never 5xx).
 */
import { MeshError } from '../../core/errors.js';

/** 1 MiB: more than any spec we accept, small enough that a flood cannot exhaust memory. */
export const MAX_BODY_BYTES = 1 << 20;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function parseJsonBody(text: string): unknown {
  let bad: string | undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) bad = key;
      return v;
    });
  } catch (e) {
    throw new MeshError('MESHD_BAD_JSON', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (bad !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `forbidden key in request body: ${bad}`);
  return value;
}
