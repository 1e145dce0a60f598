/**
 * Test-side handles on udp-peer.js (a UDP client with one fixed source port, a named UDP server),
 * run inside network namespaces with `ip netns exec`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const UDP_PEER = fileURLToPath(new URL('./udp-peer.js', import.meta.url));

export function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after 10 s: ${out}`)), 10_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) (clearTimeout(timer), resolve());
    });
    child.on('exit', (code) => (clearTimeout(timer), reject(new Error(`${what} exited ${code}: ${out}`))));
  });
}

export interface UdpClient {
  /** Sends one datagram from the fixed source port; the answering server's name, or 'TIMEOUT' after `waitMs`. */
  send(waitMs: number): Promise<string>;
  close(): void;
}

/** A UDP client in `ns` bound to source port `sport` (every datagram: the same 5-tuple, one conntrack entry). */
export async function udpClient(ns: string, host: string, port: number, sport: number): Promise<UdpClient> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, UDP_PEER, 'client', host, String(port), String(sport)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await waitReady(child, `udp client in ${ns}`);
  let waiter: ((l: string) => void) | null = null;
  let buf = '';
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (l !== 'ready' && waiter) (waiter(l), (waiter = null));
    }
  });
  return {
    send: (waitMs) => new Promise((resolve) => {
      waiter = (l) => resolve((JSON.parse(l) as { reply?: string }).reply ?? 'TIMEOUT');
      child.stdin!.write(`${waitMs}\n`);
    }),
    close: () => void (child.exitCode === null && child.kill('SIGKILL')),
  };
}
