/**
 * `netctl cluster ...` (docker swarm init/join/join-token/leave). Join tokens are secrets:
 * they are read from a file or stdin, never from argv (ps and shell history would show them).
 * Also the shared helpers of the cluster commands (manager calls through the agent proxy).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { ApiClient } from '../adapters/api/client.js';
import { MeshError } from '../core/errors.js';
import { parseEndpoints } from '../api/etcd-endpoints.js';
import { clientFor, type GlobalOpts } from './context.js';
import { formatted, table } from './format.js';
import { infoText, type InfoView } from './node-views.js';

/** A client whose paths go to the manager through the local agent (`/v1/manager/...`). */
export function managerCall(globals: () => GlobalOpts): <T = unknown>(method: string, path: string, body?: unknown) => Promise<T> {
  let c: ApiClient | undefined;
  return <T>(method: string, path: string, body?: unknown) => {
    c ??= clientFor(globals());
    return c.call<T>(method, `/v1/manager${path}`, body);
  };
}

export function readTokenFrom(file: string | undefined): string {
  const src = file ?? '-';
  let text: string;
  try {
    text = readFileSync(src === '-' ? 0 : src, 'utf8');
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `cannot read the join token from ${src === '-' ? 'stdin' : src}: ${(e as Error).message}`);
  }
  const token = text.trim().split('\n')[0]?.trim() ?? '';
  if (!token) throw new MeshError('MESHD_BAD_ARGUMENT', `no join token in ${src === '-' ? 'stdin' : src}`);
  return token;
}

interface ClusterStatus {
  joined: boolean;
  nodeId: string | null;
  role: string | null;
  managerAddr: string | null;
  manager: boolean;
  lastError: string | null;
}

/** Bound on init, join and leave (see clusterOp). */
const CLUSTER_OP_TIMEOUT_MS = 60_000;

export function clusterCommand(globals: () => GlobalOpts): Command {
  const cluster = new Command('cluster').description('create, join and leave a cluster (like docker swarm)');
  const agent = () => clientFor(globals());
  /**
   * init, join and leave make keys, sign or fetch certificates and (join) load the x509 code and talk to a
   * manager: seconds of CPU on a starved host, not a quick read. The usual 15 s bound cut joins off on a
   * machine at load 30 (the agent still finished them); 60 s is what such a host needs. Docker's own
   * join waits 20 s and then goes on in the background.
   */
  const clusterOp = () => clientFor(globals(), CLUSTER_OP_TIMEOUT_MS);
  cluster
    .command('init')
    .description('make this node the manager of a new cluster (root CA, join tokens, ingress network)')
    .option('--listen-port <port>', 'manager API port (default 2377)')
    .option('--store <kind>', 'sqlite (embedded, one manager; default) or etcd (shared: more managers can join)')
    .option('--etcd-endpoints <urls>', 'etcd client URLs, comma-separated (with --store etcd)')
    .option('--etcd-root <prefix>', 'key prefix of this cluster in etcd (default /meshd/)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .addHelpText('after', '\nExamples:\n  netctl --node n1 cluster init\n  netctl --node n1 cluster join-token worker -q > worker.token\n  netctl --node n1 cluster init --store etcd --etcd-endpoints http://10.99.0.2:2379\n  netctl --node n1 cluster join-token manager -q > manager.token   # then cluster join on n2, n3\n\nWith etcd, the root CA key is kept in etcd: whoever can read it can issue node certificates.\nKeep etcd reachable by the managers only.')
    .action(async (o: { listenPort?: string; format?: string; store?: string; etcdEndpoints?: string; etcdRoot?: string }) => {
      const port = o.listenPort === undefined ? undefined : Number(o.listenPort);
      const kind = o.store ?? (o.etcdEndpoints !== undefined ? 'etcd' : 'sqlite');
      if (kind !== 'sqlite' && kind !== 'etcd') throw new MeshError('MESHD_BAD_ARGUMENT', `--store must be sqlite or etcd, got ${JSON.stringify(kind)}`);
      if (kind === 'etcd' && !o.etcdEndpoints) throw new MeshError('MESHD_BAD_ARGUMENT', '--store etcd needs --etcd-endpoints URL[,URL]');
      if (kind === 'sqlite' && o.etcdRoot !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', '--etcd-root needs --store etcd');
      const store = kind === 'etcd' ? { kind, endpoints: parseEndpoints(o.etcdEndpoints!), ...(o.etcdRoot !== undefined ? { root: o.etcdRoot } : {}) } : undefined;
      const s = await clusterOp().call<ClusterStatus>('POST', '/v1/cluster/init', { ...(port === undefined ? {} : { listenPort: port }), ...(store ? { store } : {}) });
      if (formatted(s, o.format)) return;
      process.stdout.write(`Cluster initialized: node ${s.nodeId} is now a manager at ${s.managerAddr}.\n\nTo add a worker, get its token on this node:\n    netctl cluster join-token worker -q > worker.token\nthen on the new node:\n    netctl cluster join --token-file worker.token ${s.managerAddr}\n`);
    });
  cluster
    .command('join')
    .description('join a cluster (a manager token on an etcd cluster makes this node a manager too); the token is read from --token-file or stdin')
    .argument('<addr>', 'manager address host:port')
    .option('--token-file <file>', 'file holding the join token (default: stdin)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .addHelpText('after', '\nExample:\n  netctl --node n2 cluster join --token-file worker.token 10.99.1.1:2377')
    .action(async (addr: string, o: { tokenFile?: string; format?: string }) => {
      const s = await clusterOp().call<ClusterStatus>('POST', '/v1/cluster/join', { token: readTokenFrom(o.tokenFile), addr });
      if (formatted(s, o.format)) return;
      process.stdout.write(`This node joined the cluster as a ${s.role} (node ${s.nodeId}).\n`);
    });
  cluster
    .command('join-token')
    .description('print the join token of a role (manager only)')
    .argument('<role>', 'worker|manager')
    .option('--rotate', 'replace the token: old tokens stop working, members are unaffected')
    .option('-q, --quiet', 'only the token')
    .action(async (role: string, o: { rotate?: boolean; quiet?: boolean }) => {
      if (role !== 'worker' && role !== 'manager') throw new MeshError('MESHD_BAD_ARGUMENT', `role must be worker or manager, got ${JSON.stringify(role)}`);
      const r = await agent().call<{ token: string }>('GET', `/v1/cluster/join-token/${role}${o.rotate ? '?rotate=1' : ''}`);
      if (o.quiet) return void process.stdout.write(`${r.token}\n`);
      const me = await agent().call<ClusterStatus>('GET', '/v1/cluster');
      process.stdout.write(`${o.rotate ? `Rotated the ${role} join token.\n` : ''}To add a ${role} to this cluster, save this token in a file (mode 0600) on the new node:\n\n    ${r.token}\n\nand run:\n    netctl cluster join --token-file FILE ${me.managerAddr}\n`);
    });
  cluster
    .command('managers')
    .description('the cluster\'s managers and which one leads (docker node ls MANAGER STATUS)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const list = await agent().call<Array<{ id: string; hostname: string; addr: string; status: string }>>('GET', '/v1/manager/managers');
      if (formatted(list, o.format)) return;
      const cap = (v: string): string => v.charAt(0).toUpperCase() + v.slice(1);
      process.stdout.write(table(['ID', 'HOSTNAME', 'ADDRESS', 'MANAGER STATUS'], list.map((m) => [m.id, m.hostname, m.addr, cap(m.status)])));
    });
  cluster
    .command('leave')
    .description('leave the cluster (the worker stops its tasks); the manager needs --force')
    .option('-f, --force', 'leave even if this node is the manager (deletes the cluster state)')
    .action(async (o: { force?: boolean }) => {
      const r = await clusterOp().call<{ nodeId: string | null }>('POST', '/v1/cluster/leave', { force: o.force === true });
      process.stdout.write(`Node ${r.nodeId ?? ''} left the cluster.\n`);
    });
  cluster
    .command('status')
    .description('this node\'s view of its cluster membership')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const s = await agent().call<Record<string, unknown>>('GET', '/v1/cluster');
      if (formatted(s, o.format)) return;
      process.stdout.write(table(['KEY', 'VALUE'], Object.entries(s).map(([k, v]) => [k, v === null ? '-' : String(v)])));
    });
  const call = managerCall(globals);
  cluster
    .command('info')
    .description('the cluster as classic Swarm\'s docker info shows it: strategy, filters, and per node its tasks and reserved / total CPUs and memory')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const v = await call<InfoView>('GET', '/info');
      if (formatted(v, o.format)) return;
      process.stdout.write(infoText(v));
    });
  cluster
    .command('update')
    .description('change cluster settings: --strategy spread (default; fewest tasks first) | binpack (fill a node before the next) | random; --rotate-gossip-key')
    .option('--strategy <s>', 'spread|binpack|random')
    .option('--rotate-gossip-key', 'rotate the gossip key now: the leader installs a new key on every node, then uses it, then removes the old one (~10 s)')
    .action(async (o: { strategy?: string; rotateGossipKey?: boolean }) => {
      if (o.rotateGossipKey) {
        await call('POST', '/cluster/gossip-keys/rotate', {});
        process.stdout.write('Gossip key rotation started: install everywhere → use → remove the old key.\n');
        if (o.strategy === undefined) return;
      }
      if (o.strategy === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', 'nothing to update: give --strategy or --rotate-gossip-key');
      if (!['spread', 'binpack', 'random'].includes(o.strategy)) throw new MeshError('MESHD_BAD_ARGUMENT', `--strategy ${JSON.stringify(o.strategy)}: use spread, binpack or random`);
      const r = await call<{ strategy: string }>('POST', '/cluster/settings', { strategy: o.strategy });
      process.stdout.write(`Cluster updated (strategy ${r.strategy}).\n`);
    });
  return cluster;
}
