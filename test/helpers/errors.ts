/**
 * Error assertions shared by tests: which stable code an error carries (src/core/errors.ts).
 */
import assert from 'node:assert/strict';
import { MeshError } from '../../src/core/errors.js';

/**
 * A predicate for `assert.rejects`/`assert.throws`: the error is a MeshError with code `c` (and
 * `details.reason`, when given); a wrong error fails with what it was instead.
 */
export function meshCode(c: string, reason?: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MeshError, `expected MeshError ${c}, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (reason !== undefined) assert.equal(e.details?.reason, reason, e.message);
    return true;
  };
}

/** The code `fn` throws (undefined when it returns, or throws something without a code). */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as MeshError).code;
  }
  return undefined;
}
