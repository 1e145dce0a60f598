/**
 * A lab's cluster as its tests see it through the real netctl: the command bound to the lab
 * (`--lab NAME --node NODE`), the tasks `service ps` reports, and the namespace a task runs in.
 * The lab must be up (createLab) and, for the task helpers, its cluster formed (joinLabCluster).
 */
import { netctl, ok, type CliResult } from './cli.js';
import { waitFor } from './lab.js';

/** A task as `service ps --format json` prints it: the fields the lab tests read. */
export interface TaskJ {
  id: string;
  name: string;
  /** The node it is placed on; null while unassigned. */
  node: string | null;
  desiredState: string;
  state: string;
  /** Network name → IPv4 address. */
  addresses: Record<string, string>;
  /** Network name → IPv6 address, on dual-stack (`--ipv6`) networks only. */
  addresses6?: Record<string, string>;
  /** The version of the service spec the task runs (a rolling update or canary raises it). */
  specVersion: number;
}

export interface LabCli {
  /** netctl against `node`'s agent. */
  on(node: string, ...args: string[]): Promise<CliResult>;
  /** netctl against the manager (the lab's first node, n1: joinLabCluster initialises it). */
  m(...args: string[]): Promise<CliResult>;
  /** `m(...args)` that must exit 0, its stdout parsed as JSON (pass `--format json` in args). */
  json<T>(...args: string[]): Promise<T>;
  /** The tasks of `service` that run and are meant to (desired and actual state `running`). */
  running(service: string): Promise<TaskJ[]>;
  /**
   * Waits until `service` has exactly `count` running tasks on exactly `nodes` different nodes,
   * polling every 250 ms; returns them. On timeout the error says what it waited on, the last
   * value, and the lab's diagnosis (waitFor).
   */
  waitRunning(service: string, count: number, nodes: number, timeoutMs: number): Promise<TaskJ[]>;
  /** Waits (every 250 ms) until `service` has a running task; returns the first one `service ps` lists. */
  waitFirst(service: string, timeoutMs: number): Promise<TaskJ>;
  /**
   * The network namespace of a task (the netns runtime's, or a docker task's sandbox):
   * `mlab-LAB-NODE-t-` and the first 12 characters of the task id, as the agent names it.
   */
  netnsOf(t: Pick<TaskJ, 'id' | 'node'>): string;
}

/**
 * netctl bound to lab `lab`. `timeoutMs` kills a netctl that has not exited by then (its result is
 * then exit 128): 120 s, netctl()'s own default, unless given.
 */
export function labCli(lab: string, timeoutMs = 120_000): LabCli {
  const on = (node: string, ...args: string[]): Promise<CliResult> => netctl(['--lab', lab, '--node', node, ...args], { timeoutMs });
  const m = (...args: string[]): Promise<CliResult> => on('n1', ...args);
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(ok(await m(...args), args.join(' ')).stdout) as T;
  const running = async (service: string): Promise<TaskJ[]> => {
    const all = JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
    return all.filter((t) => t.desiredState === 'running' && t.state === 'running');
  };
  const waitRunning = async (service: string, count: number, nodes: number, ms: number): Promise<TaskJ[]> =>
    (await waitFor(`${service} has ${count} running tasks on ${nodes} nodes`, async () => {
      const t = await running(service);
      return t.length === count && new Set(t.map((x) => x.node)).size === nodes ? t : undefined;
    }, ms, 250)).value;
  const waitFirst = async (service: string, ms: number): Promise<TaskJ> => (await waitFor(`${service} has a running task`, async () => (await running(service))[0], ms, 250)).value;
  const netnsOf = (t: Pick<TaskJ, 'id' | 'node'>): string => `mlab-${lab}-${t.node}-t-${t.id.slice(0, 12)}`;
  return { on, m, json, running, waitRunning, waitFirst, netnsOf };
}
