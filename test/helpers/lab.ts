/**
 * Labs for tests, with guaranteed cleanup: call `destroyLab` from a top-level `after` hook
 * (it runs also when the test fails); leftovers of a crashed earlier run with the same name
 * are removed by `createLab` first.
 */
import { realExec } from '../../src/adapters/exec.js';
import { labDown, labUp, type LabState, type LabUpOptions } from '../../src/lab/lab.js';
import { ApiClient } from '../../src/adapters/api/client.js';

export async function createLab(opts: LabUpOptions): Promise<LabState> {
  await labDown(realExec, opts.name).catch(() => undefined);
  return labUp(realExec, opts);
}

export async function destroyLab(name: string): Promise<void> {
  await labDown(realExec, name).catch(() => undefined);
}

export function agentClient(lab: LabState, node: string): ApiClient {
  const n = lab.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node}`);
  return new ApiClient({ socketPath: n.socket });
}

/** Polls `fn` until it returns a truthy value or the deadline passes; returns the value and elapsed ms. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, stepMs = 100): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return { value: v, ms: Date.now() - start };
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
