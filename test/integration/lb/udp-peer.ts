/**
 * Tiny UDP peer run inside test namespaces (`ip netns exec NS node udp-peer.js ...`):
 *   serve NAME PORT          answer each datagram with "NAME"; prints "ready" once bound
 *   client HOST PORT SPORT   bound to source port SPORT (one 5-tuple for every datagram: one conntrack
 *                            entry); on each stdin line WAIT_MS sends "ping" and prints one JSON line
 *                            {"reply":NAME} or {"timeout":true} after WAIT_MS; prints "ready" once bound
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

function main(): void {
  const [mode, a, b, c] = process.argv.slice(2);
  if (mode === 'serve') {
    const s = createSocket('udp4');
    s.on('message', (_m, r) => s.send(a ?? 'x', r.port, r.address));
    s.bind(Number(b), () => console.log('ready'));
    return;
  }
  if (mode === 'client') {
    const s = createSocket('udp4');
    let waiter: ((name: string) => void) | null = null;
    s.on('message', (m) => waiter?.(m.toString()));
    s.bind(Number(c), () => {
      console.log('ready');
      createInterface({ input: process.stdin }).on('line', (l) => {
        const timer = setTimeout(() => {
          waiter = null;
          console.log(JSON.stringify({ timeout: true }));
        }, Number(l) || 1000);
        waiter = (name) => {
          clearTimeout(timer);
          waiter = null;
          console.log(JSON.stringify({ reply: name }));
        };
        s.send('ping', Number(b), a ?? '127.0.0.1');
      });
    });
    return;
  }
  console.error('usage: udp-peer.js serve|client ...');
  process.exit(2);
}

main();
