/**
 * Plumbs a task namespace into its networks' sandboxes, shared by the netns and docker
 * runtimes. One interface per attachment, named eth0, eth1, … in attachment order (the
 * order the manager assigned, like Docker's): a veth pair is created in that network's
 * sandbox (`vt-<task>`, enslaved to the bridge) whose peer is born directly inside the task
 * namespace as `eth<i>`; then address (which brings the route to its subnet), MAC, MTU,
 * `lo` up, and the default route via the FIRST attachment's gateway. A dual-stack attachment
 * also gets its IPv6 address with `nodad` (no 1-2 s of tentative state: IPAM made it unique);
 * no IPv6 default route (the overlay has no way out, the /64 route reaches every task). The host-side name can
 * be the same for every network: each network has its own sandbox namespace, and a task is
 * attached to a network at most once (worker-plan.ts refuses duplicates).
 * One `ip -batch` per network sandbox plus one for the task namespace, all run by one `sh` (attach()).
 *
 * A macvlan attachment has no sandbox: its `eth<i>` is a macvlan sub-interface (mode bridge)
 * of the node's parent interface, created by one `ip -batch` in the agent's own namespace
 * straight into the task namespace (`link add link PARENT name eth<i> netns TASK`); the
 * interface dies with the task namespace, nothing is left on the node.
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

/** Task-side interface of the i-th attachment (0-based). */
export function taskIfName(i: number): string {
  return `eth${i}`;
}

/**
 * The batch scripts: one per attachment for its sandbox (same order; '' for macvlan), one for
 * the agent's own namespace (macvlan sub-interfaces; '' without), one for the task; pure, golden-tested.
 */
export function attachScripts(taskId: string, taskNs: string, list: readonly Attachment[]): { sandboxes: string[]; host: string; task: string } {
  if (list.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${taskId}: no network attachment`);
  const veth = vethName(taskId);
  const hostLines = list.flatMap((a, i) => (a.macvlanParent === undefined ? [] : [
    `link add link ${a.macvlanParent} name ${taskIfName(i)}${a.mtu > 0 ? ` mtu ${a.mtu}` : ''} netns ${taskNs} type macvlan mode bridge`,
  ]));
  const sandboxes = list.map((a, i) => (a.macvlanParent !== undefined ? '' : [
    `link add ${veth} mtu ${a.mtu} type veth peer name ${taskIfName(i)} mtu ${a.mtu} netns ${taskNs}`,
    `link set ${veth} master ${a.bridge} up`,
    // IPAM reuses a freed address (and its MAC) on another node. A bridge that learned that MAC
    // behind the VXLAN port while it lived elsewhere would keep sending its frames back out there
    // (dropped: never out of the port they came in) until the entry ages out (300 s): the new task
    // was unreachable from other nodes for minutes. Flush the learned entries when a task arrives;
    // static entries stay, and the bridge relearns in a packet.
    `link set ${a.bridge} type bridge fdb_flush`,
    '',
  ].join('\n')));
  const task = [
    'link set lo up',
    ...list.flatMap((a, i) => [
      `link set ${taskIfName(i)} address ${a.mac} up`, `addr add ${a.ip}/${a.prefix} dev ${taskIfName(i)}`,
      ...(a.ip6 !== undefined && a.prefix6 !== undefined ? [`addr add ${a.ip6}/${a.prefix6} dev ${taskIfName(i)} nodad`] : []),
    ]),
    `route add default via ${list[0]!.gateway} dev ${taskIfName(0)}`,
    '',
  ].join('\n');
  return { sandboxes, host: hostLines.length ? `${hostLines.join('\n')}\n` : '', task };
}

/**
 * Plumbs the task: `first` (an `ip` command that makes the task namespace: `netns add NS`, or
 * `netns attach NS PID` for a Docker sandbox) then the batches of attachScripts, all in ONE `sh`
 * process the agent spawns (attachShell). Issue 18 item 1: three or four spawns in a row, each
 * awaited by an agent whose event loop is busy with endpoint churn, were most of a task's start
 * (the netns runtime's step was p50 160–196 / p99 570–800 ms under 100 changes/s in a 10-node lab,
 * 32 ms alone); the programs are the same, only the round trips through the agent go.
 */
export async function attach(exec: Exec, taskId: string, taskNs: string, list: readonly Attachment[], first?: readonly string[]): Promise<void> {
  await exec.check('sh', ['-s'], { input: attachShell(taskId, taskNs, list, first) });
}

/** A word for `sh`, single-quoted (a `'` inside becomes `'\''`). */
export function shellWord(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `sh` script of attach() (pure, golden-tested): each step an `ip` command, batches fed as
 * quoted here-documents (nothing in them is expanded); the first step that fails stops the
 * script with a line naming it, after ip's own message.
 */
export function attachShell(taskId: string, taskNs: string, list: readonly Attachment[], first?: readonly string[]): string {
  const s = attachScripts(taskId, taskNs, list);
  const out: string[] = [];
  const fail = (what: string) => `|| { echo ${shellWord(`meshd: ${what} failed`)} >&2; exit 1; }`;
  if (first) out.push(`ip ${first.map(shellWord).join(' ')} ${fail(`ip ${first.join(' ')}`)}`);
  let n = 0;
  // A delimiter never equals a batch line: every line attachScripts writes starts with an ip object (link, addr, route).
  const batch = (ns: string | null, script: string) => {
    const eof = `MESHD_EOF_${n++}`;
    out.push(`ip ${ns === null ? '' : `-n ${shellWord(ns)} `}-batch - <<'${eof}' ${fail(`plumbing in ${ns === null ? 'the node namespace' : `namespace ${ns}`}`)}`, script.replace(/\n$/, ''), eof);
  };
  if (s.host) batch(null, s.host);
  for (const [i, a] of list.entries()) if (s.sandboxes[i]) batch(a.sandboxNs, s.sandboxes[i]!);
  batch(taskNs, s.task);
  return out.join('\n') + '\n';
}

/** Removes the sandbox ends (and so the pairs); absent is fine. macvlan ones go with the task namespace. */
export async function detach(exec: Exec, taskId: string, list: readonly Pick<Attachment, 'sandboxNs' | 'macvlanParent'>[]): Promise<void> {
  for (const a of list) if (a.macvlanParent === undefined) await exec.run('ip', ['-n', a.sandboxNs, 'link', 'del', vethName(taskId)]);
}

/**
 * Deletes every veth inside a task namespace (its eth<i> and whatever else was plumbed into it),
 * which removes the peers in the network sandboxes at once. Deleting the namespace alone leaves
 * them to the kernel's asynchronous namespace cleanup, visible for a while after stop; and after
 * an agent restart the runtime no longer knows which sandboxes the task was attached to.
 */
export async function detachAll(exec: Exec, taskNs: string): Promise<void> {
  const r = await exec.run('ip', ['-j', '-n', taskNs, 'link', 'show', 'type', 'veth']);
  if (r.code !== 0) return; // namespace absent
  const names = (JSON.parse(r.stdout || '[]') as { ifname?: string }[]).map((l) => l.ifname).filter((n): n is string => !!n);
  if (names.length) await exec.run('ip', ['-n', taskNs, '-batch', '-'], { input: names.map((n) => `link del ${n}`).join('\n') + '\n' });
}
