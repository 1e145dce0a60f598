/**
 * Labs for tests, with guaranteed cleanup: call `destroyLab` from a top-level `after` hook
 * (it runs also when the test fails); leftovers of a crashed earlier run with the same name
 * are removed by `createLab` first.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { realExec } from '../../src/adapters/exec.js';
import { labDown, labUp, type LabState, type LabUpOptions } from '../../src/lab/lab.js';
import { ApiClient } from '../../src/adapters/api/client.js';
import { netctl, ok, type CliResult } from './cli.js';

/**
 * Labs alive in this test process: a waitFor that times out prints what their agents say
 * (diagnose) by default, so a failure shows the state it waited on, not just "timed out".
 */
const liveLabs = new Map<string, LabState>();

export async function createLab(opts: LabUpOptions): Promise<LabState> {
  await labDown(realExec, opts.name).catch(() => undefined);
  const lab = await labUp(realExec, opts);
  liveLabs.set(lab.name, lab);
  return lab;
}

export async function destroyLab(name: string): Promise<void> {
  liveLabs.delete(name);
  await labDown(realExec, name).catch(() => undefined);
}

export function agentClient(lab: LabState, node: string): ApiClient {
  const n = lab.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node}`);
  return new ApiClient({ socketPath: n.socket });
}

/** A value as a short string for a timeout message. */
function show(v: unknown): string {
  try {
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 1500 ? `${s.slice(0, 1500)}…` : s;
  } catch {
    return String(v);
  }
}

/**
 * Polls `fn` until it returns a truthy value or the deadline passes; returns the value and
 * elapsed ms. On timeout the error names the last value `fn` returned and the last error it
 * threw, then what `diag` says (default: `diagnose` of every node of every live lab).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, stepMs = 100, diag?: () => Promise<string> | string): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  let last: unknown;
  let lastValue: unknown = '(none yet)';
  for (;;) {
    try {
      const v = await fn();
      if (v) return { value: v, ms: Date.now() - start };
      lastValue = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > timeoutMs) {
      let extra = '';
      try {
        // Each node's diagnosis is bounded: a stopped (SIGSTOP) agent must not hang the report.
        // A node that does not answer still gets what needs no agent: is its process alive, its log's tail.
        const bounded = (p: Promise<string>, lab: LabState, who: string) => Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`--- diagnosis of ${who}: the agent did not answer in 5 s\n${processDiagnosis(lab, who)}`), 5000).unref())]);
        extra = diag ? await diag() : (await Promise.all([...liveLabs.values()].flatMap((lab) => lab.nodes.map((n) => bounded(diagnose(lab, n.name), lab, n.name))))).join('\n');
      } catch (e) {
        extra = `diagnosis failed: ${(e as Error).message}`;
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${show(lastValue)}${last ? `; last error: ${(last as Error).message}` : ''}${extra ? `\n${extra}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * What a node's agent says about itself, for a test that times out: LB namespaces (errors,
 * drift, held backends), overlay status, and its last warnings/errors from the log. Never throws.
 */
export async function diagnose(lab: LabState, node: string): Promise<string> {
  const out: string[] = [`--- diagnosis of ${node}`];
  const c = agentClient(lab, node);
  try {
    type Row = { key: string; backends: Array<{ target: string; state: string }>; kernel: string[] | null };
    const lb = await c.call<{ namespaces: Array<{ netns: string; error: string | null; drift: unknown[]; held?: unknown[]; lastApply: unknown; frontends: Row[] }> }>('GET', '/v1/lb/status');
    for (const n of lb.namespaces) {
      out.push(`lb ${n.netns}: error=${n.error ?? 'none'} drift=${JSON.stringify(n.drift)} held=${JSON.stringify(n.held ?? [])} lastApply=${JSON.stringify(n.lastApply)}`);
      for (const f of n.frontends) out.push(`  ${f.key}: desired=${f.backends.map((b) => `${b.target}${b.state === 'active' ? '' : `(${b.state})`}`).join(',')} kernel=${f.kernel?.join(',') ?? 'absent'}`);
    }
  } catch (e) {
    out.push(`lb status: ${(e as Error).message}`);
  }
  try {
    const s = await c.call<{ active: boolean; drift: unknown[]; lastError?: unknown }>('GET', '/v1/overlay/status');
    out.push(`overlay: active=${s.active} drift=${JSON.stringify(s.drift)} lastError=${JSON.stringify(s.lastError ?? null)}`);
  } catch (e) {
    out.push(`overlay status: ${(e as Error).message}`);
  }
  try {
    const t = await c.call<Array<{ network: string; nodes: string[]; entries: Array<{ key: string; owner: string; ltime: number }> }>>('GET', '/v1/gossip/tables');
    for (const x of t) out.push(`table ${x.network} nodes=${x.nodes.join(',')}: ${x.entries.map((e) => `${e.key}@${e.owner}:${e.ltime}`).join(' ')}`);
  } catch (e) {
    out.push(`tables: ${(e as Error).message}`);
  }
  out.push(processDiagnosis(lab, node));
  return out.join('\n');
}

/**
 * What a node's diagnosis can say without its agent: whether the agent process is alive, its last
 * warnings/errors and its last lines of any level (a hung or dead agent's last words). Never throws.
 */
export function processDiagnosis(lab: LabState, node: string): string {
  const n = lab.nodes.find((x) => x.name === node);
  const out: string[] = [];
  if (n?.pid) {
    let alive = true;
    try {
      process.kill(n.pid, 0);
    } catch {
      alive = false;
    }
    // The pid is the one the lab started; a test that restarted the agent has a newer one.
    out.push(`agent pid ${n.pid} (as the lab started it): ${alive ? 'alive' : 'not running — gone, or restarted since under a new pid'}`);
  }
  try {
    const all = n ? readFileSync(n.log, 'utf8').split('\n').filter((l) => l.length > 0) : [];
    const bad = all.filter((l) => /"level":(4|5|6)\d/.test(l)).slice(-25);
    out.push(...bad.map((l) => `log: ${l.slice(0, 600)}`));
    out.push(...all.slice(-5).map((l) => `log tail: ${l.slice(0, 600)}`));
  } catch (e) {
    out.push(`log: ${(e as Error).message}`);
  }
  return out.join('\n');
}

/**
 * The cluster preamble the 2-node lab tests shared word for word (it stood in 17 lab files, some
 * with their own variations): `cluster init` on the first node, the worker join token written to
 * `tokenFile` (mode 0600: a secret never goes on argv), `cluster join` of every other node to the
 * first one's underlay address (`[v6]:2377` on an IPv6-only underlay), `--format json` unless `json: false`,
 * through the lab's CLI; with `waitReady`, then until `node ls` counts every node ready (`readyTimeoutMs`, 60 s,
 * polled every 500 ms; a timeout names each node's last state). Each command must exit 0 (cli.ts ok: the step, exit code, stderr);
 * one that has not exited after `timeoutMs` (150 s) is killed, and fails so.
 */
export async function joinLabCluster(lab: LabState, tokenFile: string, o: { waitReady?: boolean; readyTimeoutMs?: number; json?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const fmt = o.json === false ? [] : ['--format', 'json'];
  const on = (node: string, ...args: string[]): Promise<CliResult> => netctl(['--lab', lab.name, '--node', node, ...args], { timeoutMs: o.timeoutMs ?? 150_000 });
  const [first, ...rest] = lab.nodes;
  if (!first) throw new Error(`lab ${lab.name} has no nodes`);
  const manager = first.underlay.includes(':') ? `[${first.underlay}]:2377` : `${first.underlay}:2377`;
  ok(await on(first.name, 'cluster', 'init', ...fmt), 'init');
  writeFileSync(tokenFile, ok(await on(first.name, 'cluster', 'join-token', 'worker', '-q'), 'join-token').stdout, { mode: 0o600 });
  for (const n of rest) ok(await on(n.name, 'cluster', 'join', '--token-file', tokenFile, manager, ...fmt), `join ${n.name}`);
  if (!o.waitReady) return;
  const want = lab.nodes.length;
  await waitFor(`${want} ready nodes`, async () => {
    const ls = JSON.parse(ok(await on(first.name, 'node', 'ls', '--format', 'json'), 'node ls --format json').stdout) as Array<{ hostname?: string; state: string }>;
    // not ready yet: thrown, so that a timeout names every node's state (waitFor keeps the last error)
    if (ls.filter((n) => n.state === 'ready').length !== want) throw new Error(`nodes: ${ls.map((n) => `${n.hostname}:${n.state}`).join(' ')}`);
    return true;
  }, o.readyTimeoutMs ?? 60_000, 500);
}
