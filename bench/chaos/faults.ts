/**
 * The soak's fault schedule: a seeded PRNG (mulberry32, so `--seed S` replays the same choices)
 * picks one fault at a time, its target and its duration; the fault is injected with the lab
 * code (src/lab: signals, nftables tables, `ip link`), held, ended, and then the driver waits for
 * convergence before the next one. Faults never overlap, so every request can be put on one.
 *
 * Not scheduled: `docker kill` of a task container — the soak's tasks run on the netns runtime
 * until the Docker runtime is finished (issue 13 item 5 names it for "once Docker tasks exist").
 */
import { seededRng } from '../../src/core/clock.js';
import { realExec } from '../../src/adapters/exec.js';
import { labBlock, labHeal, labPartition } from '../../src/lab/faults.js';
import { labSignalAgent, labStartAgent, type LabState } from '../../src/lab/lab.js';
import { ApiClient } from '../../src/adapters/api/client.js';
import { MESH_SVC, NAME_IMAGES, NAME_SVC, netctlOk } from './setup.js';
import { managerView, type Member } from './view.js';

export const KINDS = ['agent-kill', 'leader-kill', 'sigstop', 'partition', 'oneway', 'link-down', 'scale', 'update', 'docker-kill'] as const;
export type Kind = (typeof KINDS)[number];
const WEIGHTS: Record<Kind, number> = { 'agent-kill': 2, 'leader-kill': 1, sigstop: 2, partition: 1.5, oneway: 1, 'link-down': 1.5, scale: 2, update: 1.5, 'docker-kill': 1.5 };
/** Kinds that cut nodes off: gossip must notice (detection is measured for these). */
const NODE_LOSS = new Set<Kind>(['agent-kill', 'leader-kill', 'partition', 'oneway', 'link-down']);

/** The schedule's PRNG: the project's seeded mulberry32 (src/core/clock.ts); the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  return seededRng(seed);
}

export interface Fault {
  id: number;
  kind: Kind;
  /** What it did, for the timeline (e.g. "SIGKILL n3 (leader) for 7.2 s"). */
  what: string;
  /** Nodes whose own published port / DNS / tasks a correct system cannot serve during the fault. */
  nodes: string[];
  start: number;
  end: number;
  /** When every observer saw the cut-off nodes as not alive (node-loss kinds), else null. */
  detectedAt: number | null;
  /** New leader seen (leader-kill). */
  electedAt?: number | null;
  convergedAt: number | null;
  /** Problems already present before the fault (not counted against its convergence). */
  carried?: number;
  error?: string;
}

export class Faults {
  private readonly rnd: () => number;
  private n = 0;
  private gen = 0;
  /** Nodes currently SIGSTOPped / cut: cleanup must undo these. */
  readonly stopped = new Set<string>();

  constructor(private readonly lab: LabState, seed: number, private readonly log: (m: string) => void) {
    this.rnd = prng(seed);
  }

  private between(lo: number, hi: number): number {
    return lo + this.rnd() * (hi - lo);
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }
  pause(): number {
    return Math.round(this.between(1000, 4000));
  }

  private nextKind(): Kind {
    const total = KINDS.reduce((a, k) => a + WEIGHTS[k], 0);
    let x = this.rnd() * total;
    for (const k of KINDS) if ((x -= WEIGHTS[k]) < 0) return k;
    return 'scale';
  }

  private api(node: string): ApiClient {
    return new ApiClient({ socketPath: this.lab.nodes.find((n) => n.name === node)!.socket, timeoutMs: 2000 });
  }

  async leader(): Promise<string | undefined> {
    for (const n of ['n1', 'n2', 'n3']) {
      const s = await this.api(n).call<{ leader: boolean | null }>('GET', '/v1/cluster').catch(() => undefined);
      if (s?.leader) return n;
    }
    return undefined;
  }

  /** Polls until every observer sees every node of `gone` as not alive; resolves the time or null at `until`. */
  private async detect(observers: string[], gone: string[], until: () => boolean): Promise<number | null> {
    while (!until()) {
      const views = await Promise.all(observers.map((o) => this.api(o).call<Member[]>('GET', '/v1/gossip/members').catch(() => undefined)));
      if (views.every((v) => v && gone.every((g) => v.find((m) => m.name === g)?.state !== 'alive'))) return Date.now();
      await sleep(250);
    }
    return null;
  }

  /** Runs one fault to its end (not to convergence). Never throws: an error is kept on the fault. */
  async run(): Promise<Fault> {
    const kind = this.nextKind();
    const all = this.lab.nodes.map((x) => x.name);
    const f: Fault = { id: ++this.n, kind, what: '', nodes: [], start: Date.now(), end: 0, detectedAt: null, convergedAt: null };
    // All random draws happen before any await, so the schedule depends on the seed only.
    const hold = kind === 'sigstop' ? this.between(500, 3000) : kind === 'link-down' ? this.between(5000, 20_000) : kind === 'agent-kill' ? this.between(2000, 8000) : this.between(5000, 15_000);
    const node = this.pick(all);
    const order = [...all].sort(() => this.rnd() - 0.5);
    const svc = this.pick([MESH_SVC, NAME_SVC]);
    const replicas = svc === MESH_SVC ? 1 + Math.floor(this.rnd() * 5) : 1 + Math.floor(this.rnd() * 4);
    const nonLeaderPick = this.rnd();
    const managerPick = this.pick(['n1', 'n2', 'n3']);
    const taskPick = this.rnd();
    try {
      switch (kind) {
        case 'agent-kill': case 'leader-kill': {
          const leader = await this.leader();
          const target = kind === 'leader-kill' ? leader : all.filter((x) => x !== leader)[Math.floor(nonLeaderPick * (all.length - 1))];
          if (!target) throw new Error('no leader to kill');
          f.nodes = [target];
          f.what = `SIGKILL ${target}${target === leader ? ' (leader)' : ''}, restart after ${(hold / 1000).toFixed(1)} s`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          labSignalAgent(this.lab.name, target, 'SIGKILL');
          const deadline = f.start + hold;
          const others = all.filter((x) => x !== target);
          const det = this.detect(others, [target], () => Date.now() > deadline);
          if (kind === 'leader-kill') {
            f.electedAt = null;
            while (Date.now() < deadline) {
              const l = await this.leader();
              if (l && l !== target) {
                f.electedAt = Date.now();
                break;
              }
              await sleep(250);
            }
          }
          f.detectedAt = await det;
          await sleep(deadline - Date.now());
          f.end = Date.now();
          await labStartAgent(this.lab.name, target);
          break;
        }
        case 'sigstop': {
          f.nodes = [node];
          f.what = `SIGSTOP ${node} for ${(hold / 1000).toFixed(1)} s`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          this.stopped.add(node);
          labSignalAgent(this.lab.name, node, 'SIGSTOP');
          await sleep(hold);
          labSignalAgent(this.lab.name, node, 'SIGCONT');
          this.stopped.delete(node);
          f.end = Date.now();
          break;
        }
        case 'partition': case 'oneway': case 'link-down': {
          const minority = kind === 'partition' ? order.slice(0, 2) : [node];
          const majority = all.filter((x) => !minority.includes(x));
          f.nodes = minority;
          f.what = kind === 'partition' ? `partition ${minority.join(',')} | ${majority.join(',')}` : kind === 'oneway' ? `one-way: ${node} drops all it receives from the other nodes` : `link down eth0 of ${node}`;
          f.what += ` for ${(hold / 1000).toFixed(1)} s`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          if (kind === 'partition') await labPartition(realExec, this.lab.name, [minority, majority]);
          else if (kind === 'oneway') await labBlock(realExec, this.lab.name, node, { oneWay: true, from: majority });
          else await realExec.check('ip', ['-n', this.lab.nodes.find((x) => x.name === node)!.netns, 'link', 'set', 'eth0', 'down']);
          const deadline = f.start + hold;
          f.detectedAt = await this.detect(majority, minority, () => Date.now() > deadline);
          await sleep(deadline - Date.now());
          if (kind === 'link-down') await realExec.check('ip', ['-n', this.lab.nodes.find((x) => x.name === node)!.netns, 'link', 'set', 'eth0', 'up']);
          else await labHeal(realExec, this.lab.name);
          f.end = Date.now();
          break;
        }
        case 'scale': {
          f.what = `scale ${svc}=${replicas}`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          await netctlOk(this.lab.name, managerPick, ['service', 'scale', '--detach', `${svc}=${replicas}`], 60_000);
          f.end = Date.now();
          break;
        }
        case 'update': {
          const gen = ++this.gen;
          // api (Docker) switches image tag; whoami (netns) changes its environment
          const change = svc === NAME_SVC ? ['--image', NAME_IMAGES[gen % 2]!] : ['--env-add', `CHAOS=${gen}`];
          f.what = `rolling update ${svc} ${change.join(' ')}`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          await netctlOk(this.lab.name, managerPick, ['service', 'update', '--detach', ...change, svc], 60_000);
          f.end = Date.now();
          break;
        }
        case 'docker-kill': {
          // SIGKILL of a running api task's application container, behind meshd's back: the agent
          // learns it from Docker's events stream; the manager replaces the task.
          const view = await managerView(this.lab);
          const x = view[NAME_SVC];
          const running = x && !('error' in x) ? x.tasks.filter((t) => t.state === 'running' && t.desiredState === 'running' && t.node) : [];
          if (!running.length) throw new Error(`no running ${NAME_SVC} task to kill`);
          const t = running[Math.floor(taskPick * running.length)]!;
          f.nodes = [];
          f.what = `docker kill the container of ${t.name} on ${t.node}`;
          this.log(`fault ${f.id}: ${f.what}`);
          f.start = Date.now();
          const ids = (await realExec.check('docker', ['ps', '-q', '--filter', `label=meshd.task=${t.id}`, '--filter', 'label=meshd.role=app'])).trim();
          if (!ids) throw new Error(`no container of ${t.name} (${t.id}) in docker ps`);
          await realExec.check('docker', ['kill', ...ids.split(/\s+/)]);
          // Detected = the manager reports the task no longer running (the events stream → agent → manager).
          for (const until = f.start + 10_000; Date.now() < until && !f.detectedAt;) {
            const v = (await managerView(this.lab))[NAME_SVC];
            const now = v && !('error' in v) ? v.tasks.find((y) => y.id === t.id) : undefined;
            if (now && now.state !== 'running') f.detectedAt = Date.now();
            else await sleep(100);
          }
          f.end = Date.now();
          break;
        }
      }
    } catch (e) {
      f.error = (e as Error).message;
      f.end ||= Date.now();
      this.log(`fault ${f.id} (${kind}): ${f.error}`);
    }
    if ((NODE_LOSS.has(kind) || kind === 'docker-kill') && f.detectedAt) this.log(`fault ${f.id}: detected after ${f.detectedAt - f.start} ms`);
    return f;
  }

  /** Undoes whatever a fault may have left (Ctrl-C mid-fault): SIGCONT, heal, links up. */
  async undo(): Promise<void> {
    for (const n of this.stopped) {
      try {
        labSignalAgent(this.lab.name, n, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await labHeal(realExec, this.lab.name).catch(() => undefined);
    await Promise.all(this.lab.nodes.map((n) => realExec.run('ip', ['-n', n.netns, 'link', 'set', 'eth0', 'up'])));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
