/**
 * `stack deploy` / `stack rm` for a stack's secrets and configs (compose/files.ts), docker's
 * way: every payload file is read first (relative to the compose file; nothing is created if
 * one cannot be read), then each missing object is created as `<stack>_<key>` labelled with
 * the stack (`com.docker.stack.namespace`), an existing one is kept (objects are immutable:
 * rotate with a new key), and an external one must exist. `stack rm` removes the objects that
 * carry the stack's label, after the services.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { MeshError } from '../core/errors.js';
import type { StackFileObject } from '../core/compose/files.js';
import { readPayload } from './file-commands.js';
import type { managerCall } from './cluster-commands.js';

type Call = ReturnType<typeof managerCall>;
export const STACK_LABEL = 'com.docker.stack.namespace';

export async function deployStackFiles(call: Call, stack: string, files: readonly StackFileObject[], composeFile: string): Promise<void> {
  if (files.length === 0) return;
  const base = composeFile === '-' ? process.cwd() : dirname(resolve(composeFile));
  const existing = {
    secret: new Set((await call<Array<{ name: string }>>('GET', '/secrets')).map((x) => x.name)),
    config: new Set((await call<Array<{ name: string }>>('GET', '/configs')).map((x) => x.name)),
  };
  const toCreate: Array<{ o: StackFileObject; data: Buffer }> = [];
  for (const o of files) {
    const exists = existing[o.kind].has(o.name);
    if (o.external) {
      if (!exists) throw new MeshError('MESHD_NOT_FOUND', `${o.kind}s.${o.key}: external ${o.kind} ${o.name} not found`);
      continue;
    }
    if (exists) continue;
    toCreate.push({ o, data: readPayload(o.kind, isAbsolute(o.file!) ? o.file! : resolve(base, o.file!)) });
  }
  for (const { o, data } of toCreate) {
    process.stdout.write(`Creating ${o.kind} ${o.name}\n`);
    await call('POST', `/${o.kind}s`, { name: o.name, data: data.toString('base64'), labels: { [STACK_LABEL]: stack } });
  }
}

/** Removes the stack's secrets and configs (by label); returns how many. */
export async function removeStackFiles(call: Call, stack: string): Promise<number> {
  let n = 0;
  for (const kind of ['secret', 'config'] as const) {
    for (const o of await call<Array<{ name: string; labels?: Record<string, string> }>>('GET', `/${kind}s`)) {
      if (o.labels?.[STACK_LABEL] !== stack) continue;
      process.stdout.write(`Removing ${kind} ${o.name}\n`);
      await call('DELETE', `/${kind}s/${encodeURIComponent(o.name)}`);
      n++;
    }
  }
  return n;
}
