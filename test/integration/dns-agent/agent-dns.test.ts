/**
 * The agent's embedded DNS end to end in a 3-node lab (real agents, task namespaces, dig, curl):
 * tasks assigned through PUT /v1/assignments resolve `web`, `tasks.web`, `web.<network>`, task
 * names and dnsrr services at 127.0.0.11 inside their namespaces; an outside name is forwarded to
 * a stub upstream running in the lab's client namespace (the agents read it from their host
 * namespace's resolv.conf, /etc/netns/<host-ns>/resolv.conf); scale 3 → 1 propagates to every
 * node; an agent SIGKILL + restart and a 10 s link blip leave no name NXDOMAIN afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { labSignalAgent, labStartAgent, labUp, type LabState } from '../../../src/lab/lab.js';
import { CLIENT_ADDR, clientNs, hostNs } from '../../../src/lab/plan.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import { agentClient, destroyLab, diagnose, waitFor } from '../../helpers/lab.js';
import { buildBusyboxImage, ensureDockerd } from '../../helpers/docker.js';

const LAB = 'itdns1';
const HERE = dirname(fileURLToPath(import.meta.url));
const NETCTL = join(HERE, '..', '..', '..', 'src', 'bin', 'netctl.js');
const NET = { id: 'dnsnet0001', name: 'app', vni: 4201, subnet: '10.40.0.0/24', gateway: '10.40.0.1' };
const WEB_VIP = '10.40.0.100';
const NODES = ['n1', 'n2', 'n3'] as const;

function task(id: string, name: string, ip: string, vip: string | null, mode: 'vip' | 'dnsrr' = 'vip'): AssignmentInput {
  return {
    task: { id, name, serviceId: `svc-${name.split('.')[0]}`, serviceName: name.split('.')[0]!, image: 'whoami' },
    desiredState: 'running',
    endpointMode: mode,
    attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip, aliases: [] }],
    ports: [{ proto: 'tcp', target: 80 }],
  };
}

const WEB = { n1: task('web1dnsaaaaa', 'web.1', '10.40.0.11', WEB_VIP), n2: task('web2dnsaaaaa', 'web.2', '10.40.0.12', WEB_VIP), n3: task('web3dnsaaaaa', 'web.3', '10.40.0.13', WEB_VIP) };
const CLIENT = task('clientdnsaaa', 'client.1', '10.40.0.20', '10.40.0.101');
/** A docker task (busybox image built locally, never pulled) on n3, when docker is available. */
const DOCKER_CLIENT: AssignmentInput = { ...task('dockcliaaaaa', 'dcl.1', '10.40.0.40', null), task: { ...task('dockcliaaaaa', 'dcl.1', '10.40.0.40', null).task, runtime: 'docker' } };
let withDocker = false;
const RR = { n2: task('rr1dnsaaaaaa', 'rr.1', '10.40.0.31', null, 'dnsrr'), n3: task('rr2dnsaaaaaa', 'rr.2', '10.40.0.32', null, 'dnsrr') };

const plan = (scaled: boolean): Record<string, AssignmentInput[]> => ({
  n1: [WEB.n1, CLIENT],
  n2: scaled ? [RR.n2] : [WEB.n2, RR.n2],
  n3: [...(scaled ? [RR.n3] : [WEB.n3, RR.n3]), ...(withDocker ? [DOCKER_CLIENT] : [])],
});

let lab: LabState;
let upstream: ChildProcess | undefined;
const nsOfTask = new Map<string, string>();

async function put(p: Record<string, AssignmentInput[]>): Promise<void> {
  for (const n of NODES) await agentClient(lab, n).call('PUT', '/v1/assignments', { assignments: p[n] });
}

async function tasks(node: string): Promise<TaskView[]> {
  return agentClient(lab, node).call<TaskView[]>('GET', '/v1/tasks');
}

/** `dig +short` from inside a namespace; null on failure (timeout, SERVFAIL, ...) with the status. */
async function dig(ns: string, name: string, type = 'A'): Promise<{ status: string; answers: string[] }> {
  const r = await realExec.run('dig', ['@127.0.0.11', '+tries=1', '+time=2', '+noall', '+answer', '+comments', name, type], { netns: ns, timeoutMs: 8000 });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `exit ${r.code}`;
  const answers = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.trim().split(/\s+/).at(-1)!).sort();
  return { status, answers };
}

async function resolvesTo(ns: string, name: string, want: string[], timeoutMs: number): Promise<number> {
  const wanted = [...want].sort().join(' ');
  let last = '';
  try {
    const { ms } = await waitFor(`${name} → ${wanted} in ${ns}`, async () => {
      const r = await dig(ns, name);
      last = `${r.status} ${r.answers.join(' ')}`;
      return r.status === 'NOERROR' && r.answers.join(' ') === wanted;
    }, timeoutMs, 200);
    return ms;
  } catch (e) {
    throw new Error(`${(e as Error).message} (last: ${last})\n${await dnsDiagnosis(ns)}`);
  }
}

/** What a failed lookup waited on: the namespace's sockets and lo, and what its node's DNS says it serves there. */
async function dnsDiagnosis(ns: string): Promise<string> {
  const node = NODES.find((n) => ns.startsWith(`${hostNs(LAB, n)}-`));
  const ss = await realExec.run('ss', ['-uatnp'], { netns: ns });
  const lo = await realExec.run('ip', ['-o', 'addr', 'show', 'lo'], { netns: ns });
  const dig1 = await realExec.run('dig', ['@127.0.0.11', '+tries=1', '+time=1', 'web'], { netns: ns, timeoutMs: 5000 });
  const stats = node ? await agentClient(lab, node).call<{ sandboxes?: unknown }>('GET', '/v1/dns/stats').catch((x: Error) => ({ sandboxes: x.message })) : { sandboxes: 'node unknown' };
  let log = '';
  try {
    log = readFileSync(`/run/meshd/${LAB}/${node}.log`, 'utf8').split('\n').filter((l) => /dns/.test(l) && !/"level":30/.test(l)).slice(-15).join('\n');
  } catch (e) {
    log = (e as Error).message;
  }
  return `${node} agent log, dns warnings:\n${log}\nsockets in ${ns}:\n${ss.stdout}${ss.stderr}\nlo: ${lo.stdout}${lo.stderr}\ndig: exit ${dig1.code} ${dig1.stdout.slice(-400)}${dig1.stderr}\n${node} udp sockets per process (after that dig):\n${socketLines(stats)}\n${node} dns stats: ${JSON.stringify(stats)}`;
}

interface SocketCountersView { id: number; path: string; fds: number[]; read: number; answered: number; errors: number }

/**
 * One line per sandbox socket and process from /v1/dns/stats: which process (agent or DNS worker, with the
 * fds `ss -p` shows) read the socket's datagrams and how many it answered — who took a lookup that timed out.
 */
function socketLines(stats: unknown): string {
  const st = stats as { sandboxes?: { bound?: Array<{ netns: string; socketId?: number | null }> }; udpSockets?: Array<{ role: string; worker?: number; pid?: number; sockets: SocketCountersView[] }> };
  const bound = Array.isArray(st.sandboxes?.bound) ? st.sandboxes.bound : [];
  const procs = st.udpSockets ?? [];
  if (!procs.length) return '  (no per-socket counters in the stats)';
  const lines: string[] = [];
  for (const b of bound) {
    lines.push(`  socket #${b.socketId ?? '?'} ${b.netns}`);
    for (const p of procs) {
      const c = p.sockets.find((x) => x.id === b.socketId);
      const who = `${p.role}${p.worker !== undefined ? ` ${p.worker}` : ''} pid ${p.pid ?? '-'}`;
      lines.push(c ? `    ${who}: fds ${c.fds.join(',')} ${c.path}: read ${c.read} answered ${c.answered} errors ${c.errors}` : `    ${who}: not serving it`);
    }
  }
  const known = new Set(bound.map((b) => b.socketId));
  for (const p of procs) for (const c of p.sockets) if (!known.has(c.id)) lines.push(`  socket #${c.id} (no bound sandbox) ${p.role} pid ${p.pid ?? '-'}: fds ${c.fds.join(',')} ${c.path}: read ${c.read} answered ${c.answered} errors ${c.errors}`);
  return lines.join('\n');
}

after(async () => {
  upstream?.kill('SIGTERM');
  if (withDocker) {
    const ids = spawnSync('docker', ['ps', '-aq', '--filter', `label=meshd.task=${DOCKER_CLIENT.task.id}`], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
  }
  await destroyLab(LAB);
});

describe('agent DNS: 127.0.0.11 in every task namespace (3-node lab)', { timeout: 300_000 }, () => {
  before(async () => {
    await destroyLab(LAB);
    // The agents' host resolv.conf (iproute2 bind-mounts /etc/netns/<ns>/resolv.conf for `ip netns exec`):
    // the stub upstream in the lab's client namespace. Written after the cleanup, before the agents start.
    for (const n of NODES) {
      mkdirSync(`/etc/netns/${hostNs(LAB, n)}`, { recursive: true });
      writeFileSync(`/etc/netns/${hostNs(LAB, n)}/resolv.conf`, `nameserver ${CLIENT_ADDR}\n`);
    }
    // Docker is part of the suite (native-scripts/setup.sh installs docker.io): no Docker is a failure, not a skip.
    if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
    withDocker = !!buildBusyboxImage();
    assert.ok(withDocker, 'the local busybox test image could not be built');
    // Labs default to one DNS process per agent; this one runs the node default's multi-process path.
    lab = await labUp(realExec, { name: LAB, nodes: 3, agentConfig: { dns: { workers: 2 } } });
    upstream = spawn('ip', ['netns', 'exec', clientNs(LAB), process.execPath, join(HERE, 'upstream-main.js'), CLIENT_ADDR, '53'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      upstream!.stdout!.once('data', () => resolve());
      upstream!.once('exit', (c) => reject(new Error(`stub upstream exited ${c}`)));
    });
    const t0 = Date.now();
    await put(plan(false));
    for (const n of NODES) {
      await waitFor(`tasks running on ${n}`, async () => {
        const ts = await tasks(n);
        if (!(ts.length === plan(false)[n]!.length && ts.every((t) => t.state === 'running'))) return false;
        for (const t of ts) nsOfTask.set(t.name, t.netns!);
        return true;
      }, 60_000);
    }
    console.log(`# all tasks running ${Date.now() - t0} ms after PUT`);
  });

  test('the task resolv.conf points at 127.0.0.11 with ndots:0', async () => {
    const r = await realExec.run('cat', ['/etc/resolv.conf'], { netns: nsOfTask.get('client.1')! });
    assert.match(r.stdout, /^nameserver 127\.0\.0\.11$/m);
    assert.match(r.stdout, /ndots:0/);
  });

  test('web, tasks.web, web.<network>, task names, dnsrr resolve inside a task namespace', async () => {
    const ns = nsOfTask.get('client.1')!;
    const ms = await resolvesTo(ns, 'tasks.web', ['10.40.0.11', '10.40.0.12', '10.40.0.13'], 20_000);
    console.log(`# tasks.web complete on n1 ${ms} ms after all tasks ran`);
    assert.deepEqual(await dig(ns, 'web'), { status: 'NOERROR', answers: [WEB_VIP] });
    assert.deepEqual(await dig(ns, 'web.app'), { status: 'NOERROR', answers: [WEB_VIP] });
    assert.deepEqual(await dig(ns, 'tasks.web.app'), { status: 'NOERROR', answers: ['10.40.0.11', '10.40.0.12', '10.40.0.13'] });
    assert.deepEqual(await dig(ns, 'web.2'), { status: 'NOERROR', answers: ['10.40.0.12'] });
    assert.deepEqual(await dig(ns, 'rr'), { status: 'NOERROR', answers: ['10.40.0.31', '10.40.0.32'] });
    assert.deepEqual(await dig(ns, 'WEB'), { status: 'NOERROR', answers: [WEB_VIP] });
    assert.deepEqual(await dig(ns, 'web', 'AAAA'), { status: 'NOERROR', answers: [] }, 'known name, other type: NODATA, not NXDOMAIN');
    assert.deepEqual(await dig(ns, '12.0.40.10.in-addr.arpa', 'PTR'), { status: 'NOERROR', answers: ['web.2.app.'] });
    // The same view from another node's task. Waited for, with the time printed: the wait above was on n1
    // only, and a record written before its peers' joins of the network are known to the writer reaches
    // them only by the next push-pull (≤ 5 s with the `local` preset) — seen once in a clean-clone run
    // under the whole suite's load (n2 and n3 lacked web.1 for > 0.6 s); see the session-7 closing note.
    const ms2 = await resolvesTo(nsOfTask.get('rr.2')!, 'tasks.web', ['10.40.0.11', '10.40.0.12', '10.40.0.13'], 20_000);
    console.log(`# tasks.web complete on n2 ${ms2} ms after n1`);
    // a real client through getaddrinfo (glibc, resolv.conf) reaching a task on another node by name
    const c = await realExec.run('curl', ['-s', '-m', '5', 'http://web.3/'], { netns: ns, timeoutMs: 10_000 });
    assert.equal(c.code, 0, `curl http://web.3/ failed: ${c.stderr}`);
    assert.match(c.stdout, /task: web\.3/);
    // The service name reaches a task through its VIP (the agent's load balancer in the task's sandbox).
    let last = '';
    const { ms: vipMs } = await waitFor(`curl http://web/ (VIP ${WEB_VIP}) answered by a web task`, async () => {
      const v = await realExec.run('curl', ['-s', '-m', '3', 'http://web/'], { netns: ns, timeoutMs: 10_000 });
      last = `exit ${v.code}: ${v.stdout.split('\n')[0]}${v.stderr}`;
      return v.code === 0 && /task: web\.[123]/.test(v.stdout);
    }, 20_000, 300, async () => `last curl: ${last}\n${await diagnose(lab, 'n1')}`);
    console.log(`# curl http://web/ through the VIP ${WEB_VIP}: ${last} (${vipMs} ms)`);
  });

  test('a name outside the cluster is forwarded to the host upstream (stub in the lab)', async () => {
    const ns = nsOfTask.get('client.1')!;
    assert.deepEqual(await dig(ns, 'outside.example'), { status: 'NOERROR', answers: ['192.0.2.7'] });
    assert.equal((await dig(ns, 'nope.example')).status, 'NXDOMAIN');
    const g = await realExec.run('getent', ['hosts', 'outside.example'], { netns: ns, timeoutMs: 10_000 });
    assert.match(g.stdout, /^192\.0\.2\.7\s/);
  });

  test('debug route and `netctl debug dns` say where an answer came from', async () => {
    const c = agentClient(lab, 'n2');
    const r = await c.call<{ outcome: string; records: Array<{ data: string }>; sources: Array<{ kind: string; owner?: string; ageMs: number }>; from: { node: string; networks: string[] } }>('GET', '/v1/dns/debug?name=tasks.web&task=client.1');
    assert.equal(r.outcome, 'answer');
    assert.deepEqual(r.records.map((x) => x.data).sort(), ['10.40.0.11', '10.40.0.12', '10.40.0.13']);
    assert.deepEqual(r.from.networks, ['app']);
    assert.equal(r.from.node, 'n1');
    assert.deepEqual(r.sources.filter((s) => s.kind === 'task').map((s) => s.owner).sort(), ['n1', 'n2', 'n3']);
    const f = await c.call<{ outcome: string; upstream: { address: string; rcode: string; answers: string[] } }>('GET', '/v1/dns/debug?name=outside.example');
    assert.equal(f.outcome, 'forward');
    assert.equal(f.upstream.address, CLIENT_ADDR);
    assert.equal(f.upstream.rcode, 'NOERROR');
    assert.match(f.upstream.answers.join(), /192\.0\.2\.7/);
    const cli = spawnSync(process.execPath, [NETCTL, '--lab', LAB, '--node', 'n1', 'debug', 'dns', 'web', '--from', 'web.2'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /answer: 10\.40\.0\.100/);
    assert.match(cli.stdout, /as task web\.2 \(on n2\)/);
    const bad = spawnSync(process.execPath, [NETCTL, '--lab', LAB, '--node', 'n1', 'debug', 'dns', 'web', '--from', 'nosuchtask'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /no task nosuchtask/);
    const stats = await agentClient(lab, 'n1').call<{ sandboxes: { bound: Array<{ netns: string; networks: string[] }> }; server: { queries: { udp: number } } }>('GET', '/v1/dns/stats');
    assert.equal(stats.sandboxes.bound.length, 2);
    assert.ok(stats.sandboxes.bound.every((b) => b.networks.join() === 'app'));
    assert.ok(stats.server.queries.udp > 0);
    // config.dns.workers = 2 (a real node's default is defaultDnsWorkers(CPUs)): the extra process is up and counted.
    const w = (stats as unknown as { workers: { processes: number; pids: number[] } }).workers;
    assert.equal(w.processes, 2);
    assert.equal(w.pids.length, w.processes - 1);
    const sb = stats.sandboxes as unknown as { lastBindMs: number; binds: number; bindFailures: number };
    console.log(`# n1 serves ${stats.sandboxes.bound.length} task namespaces; last bind took ${sb.lastBindMs} ms; ${sb.binds} binds, ${sb.bindFailures} failed attempts (retried)`);
  });

  test('inside a Docker container: busybox nslookup and wget by service and task name', async () => {
    const c = (await tasks('n3')).find((x) => x.name === 'dcl.1')?.container;
    assert.ok(c, 'the docker task has a container');
    const run = (argv: string[]): { code: number; out: string } => {
      const r = spawnSync('docker', ['exec', c, '/bin/busybox', ...argv], { encoding: 'utf8', timeout: 20_000 });
      return { code: r.status ?? 128, out: `${r.stdout}${r.stderr}` };
    };
    assert.match(run(['cat', '/etc/resolv.conf']).out, /nameserver 127\.0\.0\.11/);
    let lastTw = '';
    const { ms: twMs } = await waitFor('nslookup tasks.web in the container lists all three web tasks', () => {
      lastTw = run(['nslookup', 'tasks.web']).out;
      return ['10.40.0.11', '10.40.0.12', '10.40.0.13'].every((ip) => lastTw.includes(ip));
    }, 20_000, 300, () => `last nslookup: ${lastTw}`);
    console.log(`# tasks.web complete in the docker task on n3 after ${twMs} ms`);
    const web = run(['nslookup', 'web']);
    assert.match(web.out, /10\.40\.0\.100/, web.out);
    const tw = run(['nslookup', 'tasks.web']).out;
    for (const ip of ['10.40.0.11', '10.40.0.12', '10.40.0.13']) assert.match(tw, new RegExp(ip.replace(/\./g, '\\.')), tw);
    // (this busybox build's wget segfaults with -T; the spawnSync timeout bounds it instead)
    const w = run(['wget', '-q', '-O', '-', 'http://web.2/']);
    if (w.code === 139) {
      // busybox-static resolves through static glibc's getaddrinfo, which needs NSS modules the test
      // image may lack: then fetch by the address nslookup returned.
      const ip2 = /Name:\s+web\.2\s+Address:\s*(\S+)/.exec(run(['nslookup', 'web.2']).out)?.[1];
      assert.equal(ip2, '10.40.0.12');
      const byIp = run(['wget', '-q', '-O', '-', `http://${ip2}/`]);
      console.log('# docker: wget by name crashed (static glibc getaddrinfo without NSS in the image); fetched by the nslookup address');
      assert.equal(byIp.code, 0, byIp.out);
      assert.match(byIp.out, /task: web\.2/);
    } else {
      assert.equal(w.code, 0, w.out);
      assert.match(w.out, /task: web\.2/);
    }
    const wn = run(['wget', '-q', '-O', '-', 'http://web/']);
    console.log(`# docker: wget http://web/ (VIP): ${wn.code === 0 ? wn.out.split('\n')[0] : `exit ${wn.code}`}`);
    if (wn.code === 139) {
      // as above: the name resolved (nslookup web → the VIP, asserted earlier); fetch through the VIP by address
      const byVip = run(['wget', '-q', '-O', '-', 'http://10.40.0.100/']);
      assert.equal(byVip.code, 0, `wget http://10.40.0.100/ (the VIP): ${byVip.out}`);
      assert.match(byVip.out, /task: web\.[123]/);
    } else {
      assert.match(wn.out, /task: web\.[123]/, `wget http://web/ through the VIP: exit ${wn.code} ${wn.out}`);
    }
    assert.match(run(['nslookup', 'outside.example']).out, /192\.0\.2\.7/);
  });

  test('query latency inside a task namespace, against a UDP echo floor measured alongside', async () => {
    const ns = nsOfTask.get('client.1')!;
    const echo = spawn('ip', ['netns', 'exec', ns, process.execPath, join(HERE, 'echo-main.js'), '5300'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        echo.stdout!.once('data', () => resolve());
        echo.once('exit', (c) => reject(new Error(`echo exited ${c}`)));
      });
      // client.1 runs on n1: n1's server counters around the runs say what the answers cost *inside* the server
      // (receive → reply, DnsHandler's latency histogram) and that none was forwarded.
      type Srv = { server: { forwards: { started: number }; local: { answer: number }; latency: { count: number; sumUs: number } } };
      const srv = async (): Promise<Srv['server']> => (await agentClient(lab, 'n1').call<Srv>('GET', '/v1/dns/stats')).server;
      const before = await srv();
      let floorP50 = Infinity;
      for (const name of ['web', 'tasks.web']) {
        const r = await realExec.run(process.execPath, [join(HERE, 'qlat-main.js'), name, '2000', '5300'], { netns: ns, timeoutMs: 120_000 });
        const j = JSON.parse(r.stdout) as { n: number; ok: number; p50Us: number; p99Us: number; maxUs: number; rcodes: Record<string, number>; floor: { ok: number; p50Us: number; p99Us: number; maxUs: number }; extraP50Us: number };
        console.log(`# ${name}: ${j.n} sequential UDP queries from a task namespace: p50 ${j.p50Us} µs, p99 ${j.p99Us} µs, max ${j.maxUs} µs, ok ${j.ok}; ` +
          `echo floor (interleaved): p50 ${j.floor.p50Us} µs, p99 ${j.floor.p99Us} µs, max ${j.floor.maxUs} µs; DNS − echo per pair, median ${j.extraP50Us} µs`);
        assert.equal(j.ok, j.n, JSON.stringify(j.rcodes));
        assert.equal(j.floor.ok, j.n, 'the echo floor answered every datagram');
        // The tail stays within the machine's own noise: 99 % of answers are faster than the slowest echo
        // (first runs: p99 1716/2592 µs vs echo max 6471/5572 µs). The agent is a busy process (gossip, LB,
        // 2 DNS processes waking per datagram); a forward, a retry or a blocking call per query breaks it.
        assert.ok(j.p99Us <= j.floor.maxUs, `${name}: DNS p99 ${j.p99Us} µs above the slowest echo ${j.floor.maxUs} µs in the same run`);
        floorP50 = Math.min(floorP50, j.floor.p50Us);
      }
      // At the median, answering from memory costs less than one more bare round trip. Judged inside the server,
      // not as the client's (DNS − echo) difference: that difference also holds the agent's wake-up from idle, which
      // on a quiet machine was 4–52 µs against echo floors of 26–105 µs across ~50 runs (one clean-clone run: 52 µs
      // over a 49 µs floor, while the server's own work stays a few µs) — the scheduler's cost, not the DNS answer's.
      const after = await srv();
      const served = after.latency.count - before.latency.count;
      const meanUs = (after.latency.sumUs - before.latency.sumUs) / Math.max(1, served);
      console.log(`# n1's server: ${served} answers, mean ${meanUs.toFixed(1)} µs from receive to reply; ${after.forwards.started - before.forwards.started} forwarded`);
      assert.ok(after.local.answer - before.local.answer >= 4000, `local answers: ${after.local.answer - before.local.answer} of 4000 queries`);
      assert.equal(after.forwards.started - before.forwards.started, 0, 'no query for a cluster name is forwarded');
      assert.ok(meanUs <= floorP50, `the server takes ${meanUs.toFixed(1)} µs per answer on average, more than a bare round trip (${floorP50} µs)`);
    } finally {
      echo.kill('SIGTERM');
    }
  });

  test('scale 3 → 1: tasks.web shows one address on every node within the propagation bound', async () => {
    const t0 = Date.now();
    await put(plan(true));
    const probes: Record<string, string> = { n1: nsOfTask.get('client.1')!, n2: nsOfTask.get('rr.1')!, n3: nsOfTask.get('rr.2')! };
    const took: string[] = [];
    await Promise.all(NODES.map(async (n) => {
      await resolvesTo(probes[n]!, 'tasks.web', ['10.40.0.11'], 20_000);
      took.push(`${n} ${Date.now() - t0} ms`);
    }));
    console.log(`# scale 3→1 visible (incl. the worker's 2 s drain): ${took.join(', ')}`);
    // A draining task's own name still resolves (it names one container); once its record is deleted it is gone.
    const { ms: gone } = await waitFor('web.2 NXDOMAIN on n3', async () => (await dig(probes.n3!, 'web.2')).status === 'NXDOMAIN', 20_000, 200);
    console.log(`# web.2 NXDOMAIN on n3 ${gone} ms later (after drain + stop)`);
    assert.deepEqual(await dig(probes.n2!, 'web'), { status: 'NOERROR', answers: [WEB_VIP] }, 'the service still has a task');
  });

  test('agent SIGKILL + restart: names keep resolving (no NXDOMAIN after the blip)', async () => {
    const n1ns = nsOfTask.get('client.1')!;
    const n2ns = nsOfTask.get('rr.1')!;
    const pid = labSignalAgent(LAB, 'n2', 'SIGKILL');
    // n2's own sandbox has no server while its agent is down; other nodes keep n2's names meanwhile
    assert.deepEqual(await dig(n1ns, 'tasks.rr'), { status: 'NOERROR', answers: ['10.40.0.31', '10.40.0.32'] });
    // SIGKILL is asynchronous: a loaded host can take a while to tear the process down, and a start
    // before it is gone is refused ("already running"). Wait for it to be gone or a zombie.
    let st = '';
    await waitFor(`the killed agent (pid ${pid}) exited`, () => {
      try {
        st = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').slice(0, 1);
        return st === 'Z' || st === 'X';
      } catch {
        return true;
      }
    }, 10_000, 50, () => `last state: ${st}`);
    const t0 = Date.now();
    await labStartAgent(LAB, 'n2');
    const back = await resolvesTo(n2ns, 'tasks.web', ['10.40.0.11'], 30_000);
    console.log(`# n2 restarted: its task resolves again ${Date.now() - t0} ms after start (${back} ms after ready)`);
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(await dig(n2ns, 'tasks.rr'), { status: 'NOERROR', answers: ['10.40.0.31', '10.40.0.32'] });
      assert.deepEqual(await dig(n1ns, 'tasks.rr'), { status: 'NOERROR', answers: ['10.40.0.31', '10.40.0.32'] });
      await new Promise((r) => setTimeout(r, 300));
    }
  });

  test('link of n2 down 20 s (ARCHITECTURE reliability case 5), then up: names resolve again everywhere without restarts', async () => {
    const n1ns = nsOfTask.get('client.1')!;
    const n2ns = nsOfTask.get('rr.1')!;
    await realExec.check('ip', ['-n', hostNs(LAB, 'n2'), 'link', 'set', 'eth0', 'down']);
    await new Promise((r) => setTimeout(r, 20_000));
    const during = await dig(n2ns, 'rr.1');
    await realExec.check('ip', ['-n', hostNs(LAB, 'n2'), 'link', 'set', 'eth0', 'up']);
    const t0 = Date.now();
    assert.deepEqual(during, { status: 'NOERROR', answers: ['10.40.0.31'] }, 'a node keeps its own names while cut off');
    await resolvesTo(n1ns, 'tasks.rr', ['10.40.0.31', '10.40.0.32'], 30_000);
    await resolvesTo(n2ns, 'tasks.web', ['10.40.0.11'], 30_000);
    await resolvesTo(nsOfTask.get('rr.2')!, 'tasks.rr', ['10.40.0.31', '10.40.0.32'], 30_000);
    console.log(`# after the 20 s link blip, every node resolves every name again ${Date.now() - t0} ms after link up`);
    const log = readFileSync(lab.nodes.find((n) => n.name === 'n1')!.log, 'utf8');
    assert.doesNotMatch(log, /dns: endpoint record dropped/);
  });
});
