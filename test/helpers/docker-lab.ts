/**
 * A lab of N namespace nodes whose agents run Docker tasks, formed into one cluster through the real
 * netctl (init on n1, the others join with a worker token read from a file), with overlay networks —
 * the preamble every Docker lab test shares. Teardown removes the lab and every container an agent of
 * this lab labelled (meshd.prefix = mlab-<name>-…), also after a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabState } from '../../src/lab/lab.js';
import type { LabUnderlay } from '../../src/lab/plan.js';
import { netctl, ok, type CliResult } from './cli.js';
import { ensureDockerd, ensureImages } from './docker.js';
import { createLab, destroyLab, waitFor } from './lab.js';

/** The Docker lab tests take `ok` from here with DockerLab (it asserts a netctl call exited 0). */
export { ok };

/** Names of the containers the agents of lab `lab` made (label meshd.prefix = mlab-LAB-…), also after a crash of theirs. */
export function labContainers(lab: string): string[] {
  const ids = spawnSync('docker', ['ps', '-aq', '--filter', 'label=meshd.prefix'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  const ins = spawnSync('docker', ['inspect', '-f', '{{index .Config.Labels "meshd.prefix"}} {{.Name}}', ...ids], { encoding: 'utf8' });
  return ins.stdout.split('\n').filter((l) => l.startsWith(`mlab-${lab}-`)).map((l) => l.split(' ')[1]!.replace(/^\//, ''));
}

/** Removes what labContainers(lab) names (`docker rm -f`); a removal that fails is said on stderr, not dropped. */
export function removeLabContainers(lab: string): void {
  const left = labContainers(lab);
  if (!left.length) return;
  const r = spawnSync('docker', ['rm', '-f', ...left], { encoding: 'utf8' });
  if (r.status !== 0) console.error(`# lab ${lab}: docker rm -f ${left.join(' ')} failed: ${r.stderr.trim()}`);
}

export class DockerLab {
  /** A scratch directory of the test's (removed at down()). */
  readonly tmp: string;
  private state: LabState | undefined;

  constructor(readonly name: string) {
    this.tmp = mkdtempSync(join(tmpdir(), `meshd-${name}-`));
  }

  get lab(): LabState {
    assert.ok(this.state, `lab ${this.name} is not up`);
    return this.state;
  }

  /** netctl against `node`'s agent. */
  on(node: string, ...args: string[]): Promise<CliResult> {
    return netctl(['--lab', this.name, '--node', node, ...args], { timeoutMs: 240_000 });
  }

  /** netctl against n1 (the manager). */
  m(...args: string[]): Promise<CliResult> {
    return this.on('n1', ...args);
  }

  /**
   * Starts dockerd (if needed) and the local images, the lab, the cluster, and the overlay `networks`.
   * `underlay`: the lab's underlay family (default IPv4; on `ipv6` the join dials `[manager]:2377`).
   */
  async up(o: { nodes: number; networks: readonly string[]; nodeConfig?: Record<string, Record<string, unknown>>; underlay?: LabUnderlay }): Promise<LabState> {
    assert.ok(await ensureDockerd(), 'Debian docker.io is installed and dockerd answers');
    await ensureImages();
    this.state = await createLab({ name: this.name, nodes: o.nodes, ...(o.nodeConfig ? { nodeConfig: o.nodeConfig } : {}), ...(o.underlay ? { underlay: o.underlay } : {}) });
    ok(await this.m('cluster', 'init'), 'init');
    const file = join(this.tmp, 'worker.token');
    writeFileSync(file, ok(await this.m('cluster', 'join-token', 'worker', '-q'), 'join-token').stdout, { mode: 0o600 });
    for (const n of this.state.nodes.slice(1)) {
      const mgr = this.state.nodes[0]!.underlay;
      ok(await this.on(n.name, 'cluster', 'join', '--token-file', file, `${mgr.includes(':') ? `[${mgr}]` : mgr}:2377`), `join ${n.name}`);
    }
    await waitFor(`${o.nodes} nodes report the docker runtime`, async () => {
      const nodes = JSON.parse(ok(await this.m('node', 'ls', '--format', 'json'), 'node ls').stdout) as Array<{ runtimes?: string[] }>;
      return nodes.length === o.nodes && nodes.every((n) => n.runtimes?.includes('docker')) && nodes;
    }, 30_000, 250);
    for (const net of o.networks) ok(await this.m('network', 'create', '-d', 'overlay', net), `network ${net}`);
    return this.state;
  }

  /** Names of the containers this lab's agents made (still there after a crash of theirs). */
  containers(): string[] {
    return labContainers(this.name);
  }

  /**
   * Removes the lab, the scratch dir and the lab's containers (a removal that fails is said, not
   * dropped). `beforeContainers`: teardown of the test's own (e.g. a node's private engine) between.
   */
  async down(beforeContainers?: () => Promise<void>): Promise<void> {
    await destroyLab(this.name);
    rmSync(this.tmp, { recursive: true, force: true });
    await beforeContainers?.();
    removeLabContainers(this.name);
  }
}
