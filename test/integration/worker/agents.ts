/**
 * Starts lab agents with `nsenter --net=/run/netns/<host>` instead of `ip netns exec`.
 *
 * Why: `ip netns exec` gives the agent a private mount namespace that is a slave of the
 * root one, so the named namespaces the agent creates (sandboxes, task namespaces: bind
 * mounts under /run/netns) never reach the root mount namespace — netctl exec, `lab down`
 * and a restarted agent cannot use them ("setting the network namespace ... failed:
 * Invalid argument"). `nsenter --net` switches only the network namespace. Until
 * src/lab/lab.ts launches agents this way, the worker tests restart the lab's agents here.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../../../src/adapters/api/client.js';
import type { LabNodeState, LabState } from '../../../src/lab/lab.js';

const MESHD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'bin', 'meshd.js');

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function nodeOf(lab: LabState, name: string): LabNodeState {
  const n = lab.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

export async function killAgent(n: LabNodeState): Promise<void> {
  if (n.pid && alive(n.pid)) process.kill(n.pid, 'SIGKILL');
  const deadline = Date.now() + 5000;
  while (alive(n.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Starts the node's agent (its config file from `lab up`) in the root mount namespace; waits until ready. */
export async function startAgent(n: LabNodeState, timeoutMs = 30_000): Promise<number> {
  const fd = openSync(n.log, 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${n.netns}`, '--', process.execPath, MESHD, '--config', n.config], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  n.pid = child.pid ?? null;
  const client = new ApiClient({ socketPath: n.socket, timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await client.call<{ ready: boolean }>('GET', '/v1/health')).ready) return n.pid!;
    } catch {
      /* not up yet */
    }
    if (!alive(n.pid)) throw new Error(`agent ${n.name} exited during start (see ${n.log})`);
    if (Date.now() > deadline) throw new Error(`agent ${n.name} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Replaces every agent of a fresh lab by one started with startAgent. */
export async function restartAgentsInRootMounts(lab: LabState): Promise<void> {
  for (const n of lab.nodes) await killAgent(n);
  await Promise.all(lab.nodes.map((n) => startAgent(n)));
}
