/**
 * Process helpers shared by the DNS benches (bench/dns.ts, bench/dns-native.ts): a free loopback port,
 * a process's CPU ticks, and waiting for a child's stdout to print a line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** utime + stime of `pid` (fields 14, 15 of /proc/PID/stat), in clock ticks (100/s). */
export function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Resolves with the first match of `re` in the child's stdout; rejects on exit or after `ms` saying what it saw. */
export async function waitLine(child: ChildProcess, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${re}; got: ${buf}`)), ms);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${buf}`)));
  });
}

/**
 * The DNS benches' fixture for `size` names (svc0…): a hosts(5) file both servers load and a dnsperf
 * query file asking each name's A record. Returns their paths under `dir` and the names.
 */
export function writeDnsFixture(dir: string, size: number): { hosts: string; qfile: string; names: string[] } {
  const names = Array.from({ length: size }, (_, i) => `svc${i}`);
  const hosts = join(dir, `hosts-${size}`);
  const qfile = join(dir, `queries-${size}`);
  writeFileSync(hosts, names.map((n, i) => `10.200.${(i + 1) >> 8}.${(i + 1) & 255} ${n}`).join('\n') + '\n');
  writeFileSync(qfile, names.map((n) => `${n} A`).join('\n') + '\n');
  return { hosts, qfile, names };
}
