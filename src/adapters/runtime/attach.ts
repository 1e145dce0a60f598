/**
 * Plumbs a task namespace into a network sandbox, shared by the netns and docker
 * runtimes: a veth pair created in the sandbox (`vt-<task>`, enslaved to the bridge)
 * whose peer is born directly inside the task namespace as `eth0`; then address, MAC,
 * MTU, default route via the gateway and `lo` up. Two `ip -batch` processes in all.
 */
import { MeshError } from '../../core/errors.js';
import type { Exec } from '../exec.js';
import type { Attachment } from './types.js';

/** Host-side (sandbox) veth name; ≤ 15 chars. */
export function vethName(taskId: string): string {
  return `vt-${shortId(taskId)}`;
}

export function shortId(taskId: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(taskId)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid task id ${JSON.stringify(taskId)}`);
  return taskId.slice(0, 12);
}

/** The two batch scripts (sandbox side, task side); pure, golden-tested. */
export function attachScripts(taskId: string, taskNs: string, a: Attachment): { sandbox: string; task: string } {
  const veth = vethName(taskId);
  return {
    sandbox: [
      `link add ${veth} mtu ${a.mtu} type veth peer name eth0 mtu ${a.mtu} netns ${taskNs}`,
      `link set ${veth} master ${a.bridge} up`,
      '',
    ].join('\n'),
    task: [
      'link set lo up',
      `link set eth0 address ${a.mac} up`,
      `addr add ${a.ip}/${a.prefix} dev eth0`,
      `route add default via ${a.gateway} dev eth0`,
      '',
    ].join('\n'),
  };
}

export async function attach(exec: Exec, taskId: string, taskNs: string, a: Attachment): Promise<void> {
  const s = attachScripts(taskId, taskNs, a);
  await exec.check('ip', ['-n', a.sandboxNs, '-batch', '-'], { input: s.sandbox });
  await exec.check('ip', ['-n', taskNs, '-batch', '-'], { input: s.task });
}

/** Removes the sandbox end (and so the pair); absent is fine. */
export async function detach(exec: Exec, taskId: string, sandboxNs: string): Promise<void> {
  await exec.run('ip', ['-n', sandboxNs, 'link', 'del', vethName(taskId)]);
}
