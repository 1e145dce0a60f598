/**
 * Standalone containers on attachable networks, docker's way: `netctl run [--name N] [-d]
 * [--rm] [-e K=V]... [--network NET]... IMAGE [CMD...]` runs on the node whose agent netctl
 * talks to (POST /v1/containers; the agent gets the addresses from the manager's IPAM and
 * refuses a network created without `--attachable`). `netctl container ls|rm|wait|logs` (and
 * `netctl ps` for `container ls`) manage them, like `docker container ...`.
 *
 * Attached (no `-d`): the output is streamed while the container runs (a followed log), then
 * completed from the whole log once it exited (so nothing between the last streamed chunk and
 * the exit is lost, with no wait on a timer), and netctl exits with the container's exit code
 * (125 when the agent cannot tell it, as docker's own failures). `--rm` then removes it.
 */
import type { IncomingMessage } from 'node:http';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import type { ApiClient } from '../adapters/api/client.js';
import { clientFor, type GlobalOpts } from './context.js';
import { formatted, table } from './format.js';
import { collect, parseKv } from './node-commands.js';
import { parseRuntime } from './service-flags.js';

export interface ContainerRow {
  id: string;
  name: string;
  runtime: string;
  state: string;
  status: string;
  exitCode: number | null;
  error: string | null;
  networks: string[];
  ips: Record<string, string>;
}

/** Exit status of `netctl run` when the container's own code is unknown (docker: 125 = the run itself failed). */
export const UNKNOWN_EXIT = 125;

const enc = encodeURIComponent;

/** Reads a whole stream into one buffer. */
async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Streams the container's output until it exits, then prints what the stream had not shown yet
 * from the whole log; resolves with the exit code.
 */
export async function attach(agent: ApiClient, id: string, out: (b: Buffer) => void): Promise<number | null> {
  let shown = 0;
  const live = await agent.stream(`/v1/tasks/${enc(id)}/logs?follow=1`).catch(() => null);
  live?.on('data', (c: Buffer) => {
    shown += c.length;
    out(c);
  });
  live?.on('error', () => undefined);
  const { exitCode } = await agent.call<{ exitCode: number | null }>('POST', `/v1/containers/${enc(id)}/wait`);
  live?.removeAllListeners('data');
  live?.destroy();
  const all = await readAll(await agent.stream(`/v1/tasks/${enc(id)}/logs`));
  if (all.length > shown) out(all.subarray(shown));
  return exitCode;
}

export function runCommand(globals: () => GlobalOpts, setExit: (code: number) => void): Command {
  return new Command('run')
    .description('run a standalone container on this node, attached to attachable networks (docker run --network NET)')
    .argument('<image>', 'image (docker runtime; never pulled) or, with --runtime netns, a label for the program')
    .argument('[cmd...]', 'command and arguments')
    .passThroughOptions()
    .option('--name <name>', 'container name (a DNS label: other containers and tasks resolve it)')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container (and free its addresses) when it exits')
    .option('-e, --env <k=v>', 'environment variable (repeatable)', collect)
    .option('--network <net>', 'attachable network to join (repeatable; at least one)', collect)
    .option('--runtime <r>', 'docker (default) or netns')
    .action(async (image: string, cmd: string[], o: { name?: string; detach?: boolean; rm?: boolean; env?: string[]; network?: string[]; runtime?: string }) => {
      if (!o.network?.length) throw new MeshError('MESHD_BAD_ARGUMENT', 'netctl run needs --network NET (an attachable overlay network): a standalone container has no other network here');
      const agent = clientFor(globals());
      const runtime = o.runtime === undefined ? 'docker' : parseRuntime(o.runtime) ?? 'docker';
      const c = await agent.call<ContainerRow>('POST', '/v1/containers', {
        ...(o.name ? { name: o.name } : {}), image, argv: cmd, env: parseKv(o.env, '--env'), networks: o.network, runtime,
        // Attached: netctl removes it after reading all of its output; detached: the agent does at exit.
        autoRemove: o.rm === true && o.detach === true,
      });
      if (o.detach) {
        process.stdout.write(`${c.id}\n`);
        return;
      }
      const code = await attach(agent, c.id, (b) => process.stdout.write(b));
      if (o.rm) await agent.call('DELETE', `/v1/containers/${enc(c.id)}?force=1`);
      setExit(code ?? UNKNOWN_EXIT);
    });
}

function listCommand(name: string, globals: () => GlobalOpts): Command {
  return new Command(name)
    .description('list standalone containers on this node (running ones; -a: all)')
    .option('-a, --all', 'also the exited ones')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}} {{.status}}\')')
    .action(async (o: { all?: boolean; quiet?: boolean; format?: string }) => {
      const rows = (await clientFor(globals()).call<ContainerRow[]>('GET', '/v1/containers')).filter((r) => o.all || r.status === 'running');
      if (o.quiet) return void process.stdout.write(rows.map((r) => `${r.id}\n`).join(''));
      if (formatted(rows, o.format)) return;
      process.stdout.write(table(['CONTAINER ID', 'NAME', 'RUNTIME', 'STATUS', 'NETWORKS'], rows.map((r) => [
        r.id.slice(0, 12), r.name, r.runtime, r.error ? `${r.status}: ${r.error}` : r.status, Object.entries(r.ips).map(([n, ip]) => `${n}=${ip}`).join(','),
      ])));
    });
}

export function containerCommands(globals: () => GlobalOpts, setExit: (code: number) => void): Command[] {
  const container = new Command('container').description('standalone containers on this node (netctl run)');
  container.addCommand(listCommand('ls', globals).alias('ps').alias('list'));
  container
    .command('rm')
    .description('remove containers and free their network addresses')
    .argument('<container...>', 'name, id or id prefix')
    .option('-f, --force', 'also a running container (stopped first)')
    .action(async (refs: string[], o: { force?: boolean }) => {
      const agent = clientFor(globals());
      for (const ref of refs) {
        await agent.call('DELETE', `/v1/containers/${enc(ref)}${o.force ? '?force=1' : ''}`);
        process.stdout.write(`${ref}\n`);
      }
    });
  container
    .command('wait')
    .description('wait until a container exits and print its exit code')
    .argument('<container>', 'name, id or id prefix')
    .action(async (ref: string) => {
      const r = await clientFor(globals()).call<{ exitCode: number | null }>('POST', `/v1/containers/${enc(ref)}/wait`);
      process.stdout.write(`${r.exitCode ?? UNKNOWN_EXIT}\n`);
    });
  container
    .command('logs')
    .description('a container\'s output')
    .argument('<container>', 'name, id or id prefix')
    .action(async (ref: string) => {
      const agent = clientFor(globals());
      const c = await agent.call<ContainerRow>('GET', `/v1/containers/${enc(ref)}`);
      process.stdout.write(await readAll(await agent.stream(`/v1/tasks/${enc(c.id)}/logs`)));
    });
  return [runCommand(globals, setExit), container, listCommand('ps', globals)];
}
