/**
 * Runs the two request loops of the soak and keeps every request's outcome:
 * - `mesh`: from the lab client namespace to every node's published port, round robin;
 * - `name`: from inside the client task's namespace to a service by name (DNS at 127.0.0.11,
 *   then the VIP in the task's sandbox). The client task may move (its node killed, cut off):
 *   `follow()` is called with where it runs now and restarts the loop there; each record keeps
 *   the node its loop ran on, so a failure can be put on a fault of that node.
 * Loaders are child processes (`ip netns exec NS node loader.js`) whose stdin is a pipe from
 * us: if this process dies, they stop on their own. `stop()` ends them and waits for them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const LOADER_JS = join(dirname(fileURLToPath(import.meta.url)), 'loader.js');

export type Loop = 'mesh' | 'name';
export interface Req {
  loop: Loop;
  /** Start (epoch ms) and duration. */
  s: number;
  d: number;
  /** Target node (mesh loop) or the node the name loop ran on. */
  node: string;
  kind: string;
  /** Task that answered: its name, or `id:SHORTID` from an nginx image (the driver maps it). */
  task: string;
  detail?: string;
}

interface Running { child: ChildProcess; done: Promise<void>; key: string }

export class Load {
  readonly reqs: Req[] = [];
  readonly skipped: Record<Loop, number> = { mesh: 0, name: 0 };
  private mesh: Running | undefined;
  private name: Running | undefined;
  private stopped = false;

  constructor(private readonly o: {
    clientNs: string;
    /** node name → underlay address, for the mesh loop. */
    nodes: Array<{ name: string; addr: string }>;
    publishedPort: number;
    meshService: string;
    nameService: string;
    /** What the name service answers: its name for whoami (the default), `nginx` for the nginx images. */
    nameExpect?: string;
    meshIntervalMs: number;
    nameIntervalMs: number;
    timeoutMs: number;
    log: (m: string) => void;
  }) {}

  startMesh(): void {
    const targets = this.o.nodes.map((n) => `http://${n.addr}:${this.o.publishedPort}/`);
    this.mesh = this.spawn('mesh', this.o.clientNs, 'client', targets, this.o.meshService, this.o.meshIntervalMs, (i) => this.o.nodes[i]?.name ?? '?');
  }

  /** Runs the name loop in task namespace `netns` on `node` (restarts it if it ran elsewhere). */
  async follow(netns: string | undefined, node: string | undefined): Promise<void> {
    const key = `${netns}@${node}`;
    if (this.stopped || (this.name && this.name.key === key)) return;
    if (this.name) {
      const old = this.name;
      this.name = undefined;
      old.child.kill('SIGKILL');
      await old.done;
    }
    if (!netns || !node) return;
    this.o.log(`name loop now runs in ${netns} on ${node}`);
    this.name = this.spawn('name', netns, key, [`http://${this.o.nameService}/`], this.o.nameExpect ?? this.o.nameService, this.o.nameIntervalMs, () => node);
  }

  get nameNode(): string | undefined {
    return this.name?.key.split('@')[1];
  }

  private spawn(loop: Loop, netns: string, key: string, targets: string[], expect: string, intervalMs: number, nodeOf: (i: number) => string): Running {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, LOADER_JS,
      '--targets', targets.join(','), '--expect', expect, '--interval-ms', String(intervalMs), '--timeout-ms', String(this.o.timeoutMs)],
    { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let j: { s?: number; d?: number; u?: number; k?: string; t?: string; e?: string; end?: boolean; skipped?: number };
      try {
        j = JSON.parse(line) as typeof j;
      } catch {
        this.o.log(`${loop} loader: bad line ${line.slice(0, 200)}`);
        return;
      }
      if (j.end) {
        this.skipped[loop] += j.skipped ?? 0;
        return;
      }
      this.reqs.push({ loop, s: j.s!, d: j.d!, node: nodeOf(j.u ?? 0), kind: j.k!, task: j.t ?? '', ...(j.e ? { detail: j.e } : {}) });
    });
    child.stdin!.on('error', () => undefined);
    const done = new Promise<void>((resolve) => child.once('close', (code, sig) => {
      if (code && !this.stopped) this.o.log(`${loop} loader in ${netns} exited ${code}${sig ? ` (${sig})` : ''}: ${stderr.trim().slice(-500)}`);
      resolve();
    }));
    return { child, done, key };
  }

  /** Ends both loops, letting requests in flight finish (bounded by their timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [this.mesh, this.name].filter((x): x is Running => !!x);
    for (const r of all) r.child.stdin!.end();
    const killer = setTimeout(() => all.forEach((r) => r.child.kill('SIGKILL')), this.o.timeoutMs + 3000);
    await Promise.all(all.map((r) => r.done));
    clearTimeout(killer);
  }

  /** SIGKILLs both loops at once (Ctrl-C, errors). */
  kill(): void {
    this.stopped = true;
    for (const r of [this.mesh, this.name]) r?.child.kill('SIGKILL');
  }
}
