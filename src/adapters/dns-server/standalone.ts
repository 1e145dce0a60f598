/**
 * Runs one embedded DNS server in its own process, for benchmarks and manual checks (so a load generator
 * never shares its event loop). Not the agent's entry point: the agent composes DnsServer itself.
 *
 *   node dist/src/adapters/dns-server/standalone.js --hosts FILE [--address 127.0.0.1] [--port 0]
 *        [--network default] [--ttl 5] [--upstream IP:PORT]... [--workers N] [--udp auto|native|js]
 *
 * FILE has hosts(5) lines `IP NAME...`: each NAME becomes a vip-mode service with that IP as VIP (the same
 * file dnsmasq reads with --addn-hosts, so both serve the same record set). Prints `listening ADDR PORT`
 * on stdout once bound and every worker process is up (`--workers N`: N processes in all, default 1); exits cleanly on SIGTERM/SIGINT, printing the server's counters as JSON to stderr.
 * `--udp` picks the UDP path (native-udp.ts; default auto); the path in use is printed on stderr at start.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { DnsRegistry } from '../../core/dns/registry.js';
import { DnsServer } from './server.js';
import type { Upstream } from './forwarder.js';
import type { UdpPathChoice } from './native-udp.js';

function parseArgs(argv: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (!k.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${k}`);
    const v = argv[++i]!;
    m.set(k.slice(2), [...(m.get(k.slice(2)) ?? []), v]);
  }
  return m;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const one = (k: string, d: string): string => args.get(k)?.at(-1) ?? d;
  const network = one('network', 'default');
  const registry = new DnsRegistry();
  const hosts = args.get('hosts')?.at(-1);
  if (hosts) {
    for (const line of readFileSync(hosts, 'utf8').split('\n')) {
      const f = line.replace(/#.*/, '').trim().split(/\s+/);
      if (f.length < 2) continue;
      for (const name of f.slice(1)) registry.upsertService({ name, network, mode: 'vip', vip: f[0]! }, performance.now());
    }
  }
  const upstreams: Upstream[] = (args.get('upstream') ?? []).map((s) => {
    const i = s.lastIndexOf(':');
    return { address: s.slice(0, i), port: Number(s.slice(i + 1)) };
  });
  const server = new DnsServer({
    registry,
    listen: [{ address: one('address', '127.0.0.1'), port: Number(one('port', '0')) }],
    defaultNetworks: [network],
    ttlSec: Number(one('ttl', '5')),
    upstreams,
    workers: Number(one('workers', '1')),
    onWorkerEvent: (event, detail) => process.stderr.write(`${event} ${JSON.stringify(detail)}\n`),
    udp: one('udp', 'auto') as UdpPathChoice,
  });
  process.stderr.write(`dns udp path: ${server.udpPath.path} (${server.udpPath.reason})\n`);
  const [bound] = await server.start();
  await server.workersReady();
  // `pids` lists every serving process (this one first) so a benchmark can add up their CPU time.
  process.stdout.write(`listening ${bound!.address} ${bound!.port} names ${registry.size()} pids ${[process.pid, ...server.workerPids()].join(',')}\n`);
  const stop = async (): Promise<void> => {
    const stats = await server.collectStats();
    await server.close();
    process.stderr.write(JSON.stringify({ ...stats, udp: server.udpReport() }) + '\n');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
