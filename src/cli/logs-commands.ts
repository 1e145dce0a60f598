/**
 * `netctl service logs [-f] [--tail N] [-t] SERVICE|TASK` (docker service logs): the manager
 * says which tasks and where (`service ps` data: task → node); each node's agent streams its
 * tasks' output through their runtime (GET /v1/tasks/:task/logs, task-logs.ts); here every
 * line gets its task's prefix (`web.1.abcd1234efgh@n2 | line`) and the streams are merged line
 * by line as they come. Nodes are reached the way `debug trace` reaches them: in a lab through
 * each node's socket (--lab/--node); otherwise through the one -H/$MESHD_HOST agent, which asks the
 * others over its peer API (src/agent/peer; task logs are served to manager nodes only). A node or
 * task that cannot be read prints one line naming it and the others go on; the command then
 * exits non-zero.
 */
import { Command } from 'commander';
import type { IncomingMessage } from 'node:http';
import { ApiClient, streamError } from '../adapters/api/client.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { agentOf, labMode, socketFor, type GlobalOpts } from './context.js';
import { LinePrefixer, findLogTask, logsQuery, paddedLabels, parseTail, serviceLogTasks, taskLabel, type LogTask } from './logs-lines.js';

type ManagerCall = <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;

export interface LogsOptions {
  follow: boolean;
  tail?: number;
  timestamps: boolean;
}

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The tasks SERVICE|TASK names: a service's current tasks, else one task of the cluster. */
export async function logTargets(call: ManagerCall, ref: string): Promise<LogTask[]> {
  try {
    const list = serviceLogTasks(await call<LogTask[]>('GET', `/tasks?service=${encodeURIComponent(ref)}`));
    if (list.length === 0) throw new MeshError('MESHD_NOT_READY', `service ${ref} has no task placed on a node (see: netctl service ps ${ref})`);
    return list;
  } catch (e) {
    if (!(e instanceof MeshError) || e.code !== 'MESHD_NOT_FOUND') throw e;
  }
  const t = findLogTask(await call<LogTask[]>('GET', '/tasks'), ref);
  if (!t) throw new MeshError('MESHD_NOT_FOUND', `no such service or task: ${ref} (see: netctl service ls)`);
  if (t.node === null) throw new MeshError('MESHD_NOT_READY', `task ${t.name} is not placed on a node (${t.state})`);
  return [t];
}

/** Which agent serves a node: the lab's per-node sockets, or the node through the -H/$MESHD_HOST agent's peers (`via` names that agent). */
function agentResolver(g: GlobalOpts): { via: string | null; client: (node: string) => ApiClient } {
  return { via: labMode(g) ? null : socketFor(g), client: (node) => agentOf(g, node) };
}

/** One task's stream: prefixed lines to `out`; resolves with its error (null when it ended cleanly or was stopped). */
function pump(res: IncomingMessage, prefix: string, io: Out, stopped: () => boolean): Promise<MeshError | null> {
  const lines = new LinePrefixer(prefix);
  return new Promise((resolve) => {
    let done = false;
    const finish = (e: MeshError | null) => {
      if (done) return;
      done = true;
      const last = lines.end();
      if (last) io.out(last);
      resolve(stopped() ? null : e);
    };
    res.on('data', (c: Buffer) => {
      const s = lines.push(c);
      if (s) io.out(s);
    });
    res.once('end', () => finish(streamError(res)));
    res.once('error', (e) => finish(toMeshError(e)));
    res.once('close', () => finish(res.complete ? streamError(res) : new MeshError('MESHD_AGENT_UNREACHABLE', 'the agent closed the stream before its end')));
  });
}

/**
 * Streams the logs of `tasks`; returns the errors of the tasks that could not be read (each
 * already reported with one line on `err`). With follow it runs until every stream ends or
 * `stop` resolves.
 */
export async function streamLogs(g: GlobalOpts, tasks: readonly LogTask[], o: LogsOptions, io: Out, stop: Promise<void>): Promise<MeshError[]> {
  const labels = paddedLabels(tasks);
  const agents = agentResolver(g);
  const byNode = new Map<string, LogTask[]>();
  for (const t of tasks) byNode.set(t.node!, [...(byNode.get(t.node!) ?? []), t]);
  const failed: MeshError[] = [];
  let stopping = false;
  const open = new Set<IncomingMessage>();
  void stop.then(() => {
    stopping = true;
    for (const r of open) r.destroy();
  });
  const names = (list: readonly LogTask[]) => list.map((t) => taskLabel(t).split('@')[0]).join(', ');

  const perNode = [...byNode].map(async ([node, list]) => {
    const client = agents.client(node);
    try {
      const info = await client.call<{ node?: string }>('GET', '/v1/info');
      // The manager's node name and the agent's own must agree (a renamed node, a stale placement).
      if (info.node !== node) {
        throw new MeshError('MESHD_AGENT_UNREACHABLE', `asked for node ${node}${agents.via ? ` through ${agents.via}` : ''}, the agent of ${info.node ?? '?'} answered`);
      }
    } catch (e) {
      const err = toMeshError(e);
      for (let i = 0; i < list.length; i++) failed.push(err);
      io.err(`netctl: cannot read logs on node ${node} (${names(list)}): ${err.message}\n`);
      return;
    }
    await Promise.all(list.map(async (t) => {
      const ts = o.timestamps && t.runtime !== 'netns';
      if (o.timestamps && !ts) io.err(`netctl: ${taskLabel(t)}: the netns runtime keeps no timestamps: its lines are shown without\n`);
      let res: IncomingMessage;
      try {
        res = await client.stream(`/v1/tasks/${encodeURIComponent(t.id)}/logs${logsQuery({ ...o, timestamps: ts })}`);
      } catch (e) {
        failed.push(toMeshError(e));
        io.err(`netctl: ${taskLabel(t)}: ${failed.at(-1)!.message}\n`);
        return;
      }
      if (stopping) return void res.destroy();
      open.add(res);
      const e = await pump(res, labels.get(t.id)!, io, () => stopping);
      open.delete(res);
      if (e) {
        failed.push(e);
        io.err(`netctl: ${taskLabel(t)}: log stream broke: ${e.message}\n`);
      }
    }));
  });
  await Promise.all(perNode);
  return failed;
}

export function logsCommand(globals: () => GlobalOpts, call: ManagerCall): Command {
  return new Command('logs')
    .description('output of a service\'s tasks (or of one task), each line prefixed with TASK@NODE, from whichever nodes run them')
    .argument('<service|task>', 'service name or id, or a task (id, id prefix, name such as web.1)')
    .option('-f, --follow', 'keep the streams open and print new lines until Ctrl-C')
    .option('-n, --tail <n>', 'only the last N lines of each task (default all)')
    .option('-t, --timestamps', 'show each line\'s time (docker runtime; the netns runtime keeps none)')
    .addHelpText('after', '\nExamples:\n  netctl --node n1 service logs web\n  netctl --node n1 service logs -f --tail 10 web\n  netctl --node n1 service logs web.1\n\nIn a lab each node\'s agent is reached through its socket; with -H the other nodes are asked through\nthat agent (its peer API: served only when that node is a manager).')
    .action(async (ref: string, f: { follow?: boolean; tail?: string; timestamps?: boolean }) => {
      const tail = parseTail(f.tail);
      const o: LogsOptions = { follow: f.follow === true, timestamps: f.timestamps === true, ...(tail !== undefined ? { tail } : {}) };
      const tasks = await logTargets(call, ref);
      let onSigint: (() => void) | undefined;
      const stop = new Promise<void>((resolve) => {
        onSigint = resolve;
        if (o.follow) process.once('SIGINT', resolve);
      });
      try {
        const io: Out = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };
        const failed = await streamLogs(globals(), tasks, o, io, stop);
        // The exit code is the first failure's (unreachable → 6, no such task → 3, ...).
        if (failed.length > 0) throw new MeshError(failed[0]!.code, `logs incomplete: ${failed.length} of ${tasks.length} task(s) could not be read (see above)`);
      } finally {
        if (onSigint) process.off('SIGINT', onSigint);
      }
    });
}
