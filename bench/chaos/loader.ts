/**
 * The chaos soak's request loop, run INSIDE a lab namespace (`ip netns exec NS node loader.js`):
 * the lab client namespace (requests to every node's published port, round robin) or a task's
 * namespace (requests to a service by name, resolved by the node's embedded DNS at 127.0.0.11).
 * It never runs in the root namespace, so no lab traffic leaves the lab (ARCHITECTURE §3).
 *
 * One new TCP connection per request (no keep-alive: each request is a fresh pick by the LB),
 * started every `--interval-ms`, each bounded by `--timeout-ms`; at most `--max-inflight` at once
 * (a tick with that many in flight is skipped and counted, so a dead path cannot pile up
 * sockets), at most `--max` requests and `--max-ms` in total. It stops when its stdin closes
 * (the driver died) or on SIGTERM. One JSON line per finished request on stdout:
 *   {"s": start epoch ms, "d": duration ms, "u": target index, "k": kind, "t": task that answered}
 * kind: ok | timeout | refused | reset | unreachable | dns | wrong | other.
 */
import { request } from 'node:http';

interface Opts { targets: string[]; intervalMs: number; timeoutMs: number; maxInflight: number; max: number; maxMs: number; expect: string }

function parse(argv: string[]): Opts {
  const o: Opts = { targets: [], intervalMs: 100, timeoutMs: 2000, maxInflight: 40, max: 1_000_000, maxMs: 4 * 3600_000, expect: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1] ?? '';
    if (k === '--targets') o.targets = v.split(',').filter(Boolean);
    else if (k === '--interval-ms') o.intervalMs = Number(v);
    else if (k === '--timeout-ms') o.timeoutMs = Number(v);
    else if (k === '--max-inflight') o.maxInflight = Number(v);
    else if (k === '--max') o.max = Number(v);
    else if (k === '--max-ms') o.maxMs = Number(v);
    else if (k === '--expect') o.expect = v; // a service name (whoami answers `task: SERVICE.N`), or `nginx`
    else throw new Error(`loader: unknown option ${k}`);
  }
  if (!o.targets.length || !o.expect || !(o.intervalMs > 0) || !(o.timeoutMs > 0)) throw new Error('loader: --targets, --expect, --interval-ms and --timeout-ms are required');
  return o;
}

/** The failure kind of a socket error, by errno (what a client of the mesh would see). */
export function kindOf(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'refused';
    case 'ECONNRESET': case 'EPIPE': return 'reset';
    case 'ETIMEDOUT': case 'CHAOS_TIMEOUT': return 'timeout';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'unreachable';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'dns';
    default: return 'other';
  }
}

function one(url: string, idx: number, o: Opts, done: () => void): void {
  const s = Date.now();
  let finished = false;
  const end = (k: string, t = '', detail = '') => {
    if (finished) return;
    finished = true;
    process.stdout.write(JSON.stringify({ s, d: Date.now() - s, u: idx, k, t, ...(detail ? { e: detail } : {}) }) + '\n');
    done();
  };
  const req = request(url, { agent: false, headers: { connection: 'close' } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => {
      // whoami answers `task: NAME`; the nginx images answer `nginx vN HOSTNAME` (hostname = the
      // task id's first 12 characters, mapped back to the task's name by the driver).
      const whoami = /^task: (\S+)/.exec(body)?.[1];
      const nginx = /^nginx v\d+ ([A-Za-z0-9_-]{12})\b/.exec(body)?.[1];
      const task = whoami ?? (nginx ? `id:${nginx}` : '');
      if (res.statusCode === 200 && (o.expect === 'nginx' ? !!nginx : task.startsWith(`${o.expect}.`))) end('ok', task);
      else end('wrong', task, `status ${res.statusCode} body ${JSON.stringify(body.slice(0, 80))}`);
    });
    res.on('error', (e: NodeJS.ErrnoException) => end(kindOf(e), '', e.code ?? e.message));
  });
  const timer = setTimeout(() => {
    const e: NodeJS.ErrnoException = new Error('timeout');
    e.code = 'CHAOS_TIMEOUT';
    req.destroy(e);
  }, o.timeoutMs);
  req.on('error', (e: NodeJS.ErrnoException) => end(kindOf(e), '', e.code ?? e.message));
  req.on('close', () => clearTimeout(timer));
  req.end();
}

function main(): void {
  const o = parse(process.argv.slice(2));
  const t0 = Date.now();
  let sent = 0;
  let inflight = 0;
  let skipped = 0;
  let next = 0;
  const tick = setInterval(() => {
    if (sent >= o.max || Date.now() - t0 > o.maxMs) return stop();
    if (inflight >= o.maxInflight) {
      skipped++;
      return;
    }
    const idx = next++ % o.targets.length;
    sent++;
    inflight++;
    one(o.targets[idx]!, idx, o, () => inflight--);
  }, o.intervalMs);
  const stop = () => {
    clearInterval(tick);
    // let requests in flight finish (each is bounded by the timeout), then say how many ticks were skipped
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ end: true, sent, skipped }) + '\n', () => process.exit(0));
    }, inflight ? o.timeoutMs + 100 : 0);
  };
  process.stdin.on('end', stop).on('error', stop).resume();
  process.on('SIGTERM', stop);
}

main();
