/**
 * Tiny TCP peer run inside test namespaces (`ip netns exec NS node probe.js ...`):
 *   serve NAME PORT            answer each connection with "NAME PEER_ADDR\n", then echo lines as "NAME echo LINE"
 *   many HOST PORT N TIMEOUT   N sequential connections; prints one JSON line {results:[{ok,name,peer,ms,err}]}
 *   hold HOST PORT             connect, print the greeting as JSON, on a stdin line send "ping", print the reply, exit
 *   loop HOST PORT TIMEOUT     sequential connections until a stdin line; prints {"started":true} after the first
 *                              answer, then at the end one JSON line {results:[...]}
 */
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';

interface Result {
  ok: boolean;
  name?: string;
  peer?: string;
  ms: number;
  err?: string;
}

function once(host: string, port: number, timeoutMs: number): Promise<Result> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = '';
    const done = (r: Omit<Result, 'ms'>): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ...r, ms: Math.round((performance.now() - t0) * 10) / 10 });
    };
    const timer = setTimeout(() => done({ ok: false, err: 'TIMEOUT' }), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        const [name, peer] = buf.slice(0, i).split(' ');
        done({ ok: true, name, peer });
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, err: e.code ?? e.message }));
    s.on('close', () => done({ ok: false, err: buf ? 'SHORT' : 'CLOSED' }));
  });
}

async function main(): Promise<void> {
  const [mode, a, b, c, d] = process.argv.slice(2);
  if (mode === 'serve') {
    const name = a ?? 'x';
    const srv = createServer((s) => {
      s.setEncoding('utf8');
      s.write(`${name} ${s.remoteAddress?.replace(/^::ffff:/, '') ?? '?'}\n`);
      let buf = '';
      s.on('data', (x: string) => {
        buf += x;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          s.write(`${name} echo ${buf.slice(0, i)}\n`);
          buf = buf.slice(i + 1);
        }
      });
      s.on('error', () => undefined);
    });
    // `::` takes both families (IPv4 peers print without their ::ffff: prefix, see above)
    srv.listen(Number(b ?? 8080), '::', () => console.log('ready'));
    return;
  }
  if (mode === 'many') {
    const results: Result[] = [];
    for (let i = 0; i < Number(c ?? 1); i++) results.push(await once(a ?? '127.0.0.1', Number(b), Number(d ?? 2000)));
    console.log(JSON.stringify({ results }));
    return;
  }
  if (mode === 'loop') {
    const results: Result[] = [];
    let stop = false;
    createInterface({ input: process.stdin }).on('line', () => (stop = true));
    while (!stop) {
      results.push(await once(a ?? '127.0.0.1', Number(b), Number(c ?? 2000)));
      if (results.length === 1) console.log(JSON.stringify({ started: true }));
    }
    console.log(JSON.stringify({ results }));
    process.exit(0);
  }
  if (mode === 'hold') {
    const s = connect({ host: a ?? '127.0.0.1', port: Number(b) });
    s.setEncoding('utf8');
    let buf = '';
    let greeted = false;
    s.on('data', (x: string) => {
      buf += x;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!greeted) {
          greeted = true;
          console.log(JSON.stringify({ greeting: line }));
        } else {
          console.log(JSON.stringify({ reply: line }));
          s.end();
          process.exit(0);
        }
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      console.log(JSON.stringify({ error: e.code ?? e.message }));
      process.exit(1);
    });
    createInterface({ input: process.stdin }).on('line', () => s.write('ping\n'));
    return;
  }
  console.error('usage: probe.js serve|many|hold ...');
  process.exit(2);
}

void main();
