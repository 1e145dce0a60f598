/**
 * The "Examples:" section of every netctl command's --help, in one table, applied to the
 * whole commander tree by `applyHelp` (docker's layout: Usage, description, options, then
 * examples). One table rather than addHelpText calls spread over the command files, so a
 * unit test can walk the tree and fail on any command without examples, and can parse
 * every example with the real program to keep them from rotting.
 *
 * A command listed here gets exactly this epilog: an `addHelpText('after', …)` made where
 * the command is defined is replaced (move such text into `notes` here).
 *
 * Examples are written as typed at a shell; the test cuts each at the first shell operator
 * (`>`, `|`, `&&`, `<`) or ` # ` comment and parses the rest.
 */
import type { EventEmitter } from 'node:events';
import type { Command } from 'commander';

export interface CommandHelp {
  /** Command lines, each starting with `netctl `. */
  examples: readonly string[];
  /** Extra paragraphs after the examples (one line each). */
  notes?: readonly string[];
}

/** Keyed by the command path without `netctl` (`service create`, `lab fault block`). */
export const HELP: Readonly<Record<string, CommandHelp>> = {
  // ---- lab ------------------------------------------------------------------------------
  'lab up': { examples: ['netctl lab up --nodes 3', 'netctl lab up --nodes 3 --cluster', 'netctl lab up --nodes 5 --name x --preset lan --format json'] },
  'lab down': { examples: ['netctl lab down', 'netctl lab down --name x', 'netctl lab down --all   # also leftovers of crashed runs'] },
  'lab ls': { examples: ['netctl lab ls', 'netctl lab ls --format json'] },
  'lab exec': { examples: ['netctl lab exec n2 -- ip addr', 'netctl lab exec --name x n1 -- nft list ruleset'] },
  'lab client': { examples: ['netctl lab client -- curl -s http://10.99.1.2:8080/', 'netctl lab client -- ping -c1 10.99.1.2'] },
  'lab start': { examples: ['netctl lab start n2', 'netctl lab start --name x n3'] },
  'lab kill': { examples: ['netctl lab kill n3', 'netctl lab kill -s SIGSTOP n2', 'netctl lab kill -s SIGCONT n2'] },
  'lab fault partition': { examples: ['netctl lab fault partition n1,n2 n3,n4,n5', 'netctl lab fault partition --proto udp n1 n2,n3'] },
  'lab fault block': { examples: ['netctl lab fault block n3', 'netctl lab fault block n2 --proto udp', 'netctl lab fault block n2 --one-way --from n1', 'netctl lab fault block n1 --loss 20'] },
  'lab fault heal': { examples: ['netctl lab fault heal', 'netctl lab fault heal --name x'] },
  demo: { examples: ['netctl demo', 'netctl demo --nodes 5 --name show', 'netctl demo --lab-only'] },

  // ---- debug ----------------------------------------------------------------------------
  'debug members': { examples: ['netctl --node n2 debug members', 'netctl --node n2 debug members --format json'] },
  'debug tables': { examples: ['netctl --node n1 debug tables', 'netctl --node n1 debug tables --network app --format json'] },
  'debug convergence': {
    examples: ['netctl debug convergence', 'netctl --node n2 debug convergence --service web --limit 5', 'netctl debug convergence --format json'],
    notes: ['Each row is one endpoint change (a new task, or a VIP/address change) and when each node\'s LB and DNS held it, in ms from its publication; '
      + 'service create/scale/update print the same as "programmed on N/N nodes in T ms (slowest NODE)".'],
  },
  'debug gossip': { examples: ['netctl --node n2 debug gossip', 'netctl debug gossip --format json'] },
  'debug dns': { examples: ['netctl --node n2 debug dns tasks.web --from web.1', 'netctl debug dns web.app --type A', 'netctl debug dns example.org --format json'] },
  'debug dns-stats': { examples: ['netctl --node n2 debug dns-stats', 'netctl debug dns-stats --format json'] },
  'debug lb': { examples: ['netctl --lab demo --node n2 debug lb --service web', 'netctl debug lb --format json'] },
  'debug fdb': { examples: ['netctl --node n2 debug fdb --network app', 'netctl debug fdb --format json'] },
  'debug sandbox': { examples: ['netctl --node n3 debug sandbox', 'netctl debug sandbox --format json'] },
  'debug mtu': { examples: ['netctl debug mtu', 'netctl --node n3 debug mtu --probe', 'netctl debug mtu --format json'] },
  'debug trace': {
    examples: ['netctl debug trace --to n3:8080', 'netctl --node n1 debug trace --from web.1 --to web:80', 'netctl debug trace --to n2:5353 --proto udp --format json'],
    notes: ['Exit code 0 also with drift: drift is reported per hop (DRIFT) and in the last line.'],
  },

  // ---- worker ---------------------------------------------------------------------------
  exec: { examples: ['netctl --lab demo --node n2 exec web.1 -- ping -c1 10.30.0.11', 'netctl --node n2 exec 3f2a9c -- curl -s http://web/', 'netctl --node n1 exec web.1 -- dig +short @127.0.0.11 tasks.web'], notes: ['The exit code is the command\'s.'] },
  'task ls': { examples: ['netctl --node n2 task ls', 'netctl --node n2 task ls --format json'] },

  // ---- keys -----------------------------------------------------------------------------
  'keys ls': { examples: ['netctl --node n1 keys ls', 'netctl keys ls --format json'] },
  'keys generate': { examples: ['netctl keys generate > new.key'] },
  'keys install': {
    examples: ['netctl --node n1 keys install --key-file new.key', 'netctl keys generate | netctl --node n1 keys install'],
    notes: ['Rotation, on every node in turn: install the new key everywhere, then use it everywhere, then remove the old one.'],
  },
  'keys use': { examples: ['netctl --node n1 keys use --key-file new.key'], notes: ['Install the key on every node before making it the primary anywhere.'] },
  'keys remove': { examples: ['netctl --node n1 keys remove --key-file old.key'], notes: ['The primary key cannot be removed: use another key first.'] },

  // ---- cluster --------------------------------------------------------------------------
  'cluster init': {
    examples: [
      'netctl --node n1 cluster init',
      'netctl --node n1 cluster init --store etcd --etcd-endpoints http://10.99.0.2:2379',
    ],
    notes: [
      'Then hand out a token: netctl --node n1 cluster join-token worker -q > worker.token\n(with etcd, join-token manager for more managers), and run cluster join on the new nodes.',
      'With etcd, the root CA key is kept in etcd: whoever can read it can issue node certificates.\nKeep etcd reachable by the managers only.',
    ],
  },
  'cluster join': { examples: ['netctl --node n2 cluster join --token-file worker.token 10.99.1.1:2377', 'netctl --node n3 cluster join 10.99.1.1:2377 < worker.token'] },
  'cluster join-token': { examples: ['netctl --node n1 cluster join-token worker', 'netctl --node n1 cluster join-token worker -q > worker.token', 'netctl --node n1 cluster join-token --rotate worker'] },
  'cluster managers': { examples: ['netctl --node n1 cluster managers', 'netctl cluster managers --format json'] },
  'cluster leave': { examples: ['netctl --node n3 cluster leave', 'netctl --node n1 cluster leave --force'] },
  'cluster status': { examples: ['netctl --node n2 cluster status', 'netctl cluster status --format json'] },
  'cluster info': { examples: ['netctl cluster info', 'netctl cluster info --format json'] },
  'cluster update': { examples: ['netctl cluster update --strategy binpack', 'netctl cluster update --strategy spread'] },

  // ---- network --------------------------------------------------------------------------
  'network create': {
    examples: [
      'netctl network create app', 'netctl network create -d overlay --subnet 10.10.0.0/24 --attachable app', 'netctl network create --mtu 1400 backend',
      'netctl network create --subnet 10.20.0.0/24 --ip-range 10.20.0.128/25 --aux-address router=10.20.0.200 --internal --label env=prod back',
      'netctl network create -d macvlan --subnet 192.168.0.0/16 --ip-range 192.168.41.0/24 --aux-address fav=192.168.41.2 --gateway 192.168.41.1 -o parent=eth0 macnet41',
    ],
  },
  'network ls': { examples: ['netctl network ls', 'netctl network ls -q', 'netctl network ls --format json', 'netctl network ls --filter label=env=prod'] },
  'network inspect': { examples: ['netctl network inspect app', 'netctl network inspect app ingress'] },
  'network rm': { examples: ['netctl network rm app', 'netctl network rm app backend'] },

  // ---- standalone containers (netctl run) -----------------------------------------------
  run: {
    examples: [
      'netctl run --network app meshd/busybox:local busybox wget -q -O - http://web/',
      'netctl run -d --name probe --network app meshd/busybox:local sleep 3600',
      'netctl run --rm -e MODE=test --network app --network back meshd/busybox:local env',
    ],
    notes: [
      'Only networks created with --attachable (netctl network create --attachable app); the address comes from the cluster\'s IPAM and is freed by container rm (or --rm).',
      'The container resolves services by name (VIP) and tasks.NAME; services\' tasks resolve the container by its --name. Without -d the output is streamed and netctl exits with the container\'s exit code.',
    ],
  },
  'container ls': { examples: ['netctl container ls', 'netctl container ls -a', 'netctl container ls -a --format \'{{.name}} {{.status}}\''] },
  'container rm': { examples: ['netctl container rm probe', 'netctl container rm -f probe other'] },
  'container wait': { examples: ['netctl container wait probe'] },
  'container logs': { examples: ['netctl container logs probe'] },
  ps: { examples: ['netctl ps', 'netctl ps -a --format json'] },

  // ---- node -----------------------------------------------------------------------------
  'node ls': { examples: ['netctl node ls', 'netctl node ls -q', 'netctl node ls --format json'] },
  'node inspect': { examples: ['netctl node inspect n2', 'netctl node inspect n1 n2 n3', 'netctl node inspect --pretty n2'] },
  'node ps': { examples: ['netctl node ps', 'netctl node ps n2', 'netctl node ps n2 --format json'] },
  'node promote': { examples: ['netctl node promote n2', 'netctl node promote n2 n3'] },
  'node demote': { examples: ['netctl node demote n2'] },
  'node update': { examples: ['netctl node update --availability drain n3', 'netctl node update --label-add zone=a --label-add rack=r1 n2', 'netctl node update --label-rm zone n2'] },
  'node rm': { examples: ['netctl node rm n3', 'netctl node rm --force n1'] },

  // ---- service --------------------------------------------------------------------------
  'service create': {
    examples: [
      'netctl service create --name web --replicas 3 -p 8080:80 whoami',
      'netctl service create --name web --network app --network name=back,alias=api whoami',
      'netctl service create --name agent --mode global whoami',
      'netctl service create --name pinger --network app --constraint node.labels.zone==a -e TARGET=web --runtime netns busybox sh -c "ping web"',
      'netctl service create --name cache --network app --runtime docker redis:7',
      'netctl service create --name db --reserve-cpu 0.5 --reserve-memory 256m --limit-memory 512m meshd/redis:local',
      'netctl service create --name db --secret db-pw --secret source=tls-key,target=key.pem,mode=0400 --config source=app-ini,target=/etc/app.ini meshd/redis:local',
    ],
    notes: [
      'Image whoami is the built-in demo server (netns runtime); any other image runs in Docker unless --runtime netns, '
      + 'where the image is only a label and the command runs from the host\'s filesystem in its own namespace. '
      + 'Without --detach, the command follows the service until it converged, then prints when every node\'s LB and DNS held '
      + 'its new endpoints ("programmed on 3/3 nodes in 640 ms (slowest n2)"; netctl debug convergence shows them per node).',
    ],
  },
  'service ls': { examples: ['netctl service ls', 'netctl service ls -q', 'netctl service ls --format json'] },
  'service ps': { examples: ['netctl service ps web', 'netctl service ps -q web', 'netctl service ps web --format json'] },
  'service inspect': { examples: ['netctl service inspect web', 'netctl service inspect web api'] },
  'service scale': { examples: ['netctl service scale web=5', 'netctl service scale web=1 api=3 --detach'] },
  'service update': {
    examples: [
      'netctl service update --image whoami --env-add V=2 --update-parallelism 2 --update-delay 1s web',
      'netctl service update --replicas 5 web',
      'netctl service update --publish-add 9090:80 --publish-rm 8080 web',
      'netctl service update --force --detach web',
      'netctl service update --runtime auto web',
      'netctl service update --reserve-cpu 1 --limit-cpu 0 db',
      'netctl service update --secret-rm db-pw --secret-add source=db-pw-v2,target=db-pw db',
    ],
    notes: ['Task changes roll out per the update config; without --detach the command follows the update until it converged.'],
  },
  'service rollback': { examples: ['netctl service rollback web', 'netctl service rollback --detach web'] },
  'service rm': { examples: ['netctl service rm web', 'netctl service rm web api'] },

  // ---- secret / config ------------------------------------------------------------------
  'secret create': {
    examples: ['netctl secret create db-pw ./db-pw.txt', 'netctl secret create db-pw - < ./db-pw.txt', 'netctl secret create -l team=shop tls-key ./key.pem'],
    notes: ['The payload comes from a file or stdin, never from the command line (at most 500 KB); it is sealed in the store.'],
  },
  'secret ls': { examples: ['netctl secret ls', 'netctl secret ls -q', 'netctl secret ls --format json'] },
  'secret inspect': { examples: ['netctl secret inspect db-pw', 'netctl secret inspect --format \'{{.size}}\' db-pw'] },
  'secret rm': { examples: ['netctl secret rm db-pw', 'netctl secret rm db-pw tls-key'], notes: ['A secret a service uses is not removed: the error names the services.'] },
  'config create': { examples: ['netctl config create nginx-conf ./nginx.conf', 'netctl config create app-ini - < app.ini'] },
  'config ls': { examples: ['netctl config ls', 'netctl config ls --format json'] },
  'config inspect': { examples: ['netctl config inspect nginx-conf', 'netctl config inspect --format \'{{.data}}\' nginx-conf'] },
  'config rm': { examples: ['netctl config rm nginx-conf'] },

  // ---- stack ----------------------------------------------------------------------------
  'stack deploy': {
    examples: ['netctl stack deploy -c compose.yml shop', 'netctl stack deploy -c compose.yml --prune --detach shop', 'netctl stack deploy -c - shop < compose.yml'],
    notes: [
      'Services are named <stack>-<service>, and each also answers to its short name <service> (a network alias) on its networks.',
      'A service without networks joins <stack>-default.',
    ],
  },
  'stack ls': { examples: ['netctl stack ls', 'netctl stack ls --format json'] },
  'stack services': { examples: ['netctl stack services shop', 'netctl stack services -q shop', 'netctl stack services shop --format json'] },
  'stack ps': { examples: ['netctl stack ps shop', 'netctl stack ps -q shop', 'netctl stack ps shop --format json'] },
  'stack rm': { examples: ['netctl stack rm shop', 'netctl stack rm shop blog'] },

  info: { examples: ['netctl info', 'netctl --lab demo --node n2 info --format json', 'netctl -H unix:///run/meshd/meshd.sock info'] },
};

/** `service create` for a command under `program` (the root's own name is left out). */
export function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** The text printed after a command's built-in help. */
export function renderEpilog(h: CommandHelp): string {
  const out = ['', 'Examples:', ...h.examples.map((e) => `  ${e}`)];
  for (const n of h.notes ?? []) out.push('', n);
  return out.join('\n');
}

/** Every command below `root`, depth first, parents before children. */
export function allCommands(root: Command): Command[] {
  return root.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** Sets the examples epilog of every command of the tree found in `table`. */
export function applyHelp(root: Command, table: Readonly<Record<string, CommandHelp>> = HELP): void {
  for (const c of allCommands(root)) {
    const h = table[commandPath(c)];
    if (!h) continue;
    // Commander's Command is an EventEmitter at runtime; its typings do not say so.
    (c as unknown as EventEmitter).removeAllListeners('afterHelp');
    c.addHelpText('after', renderEpilog(h));
  }
}
