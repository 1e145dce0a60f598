/**
 * Query latency probe run inside a task namespace:
 *   ip netns exec <task-ns> node qlat-main.js NAME COUNT
 * Sends COUNT A queries for NAME to 127.0.0.11:53 one after another (UDP) and prints JSON
 * { n, ok, p50Us, p99Us, maxUs, rcodes } on stdout.
 */
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import DNS from 'dns2';

const { Packet } = DNS;
const [name = 'web', countRaw = '1000'] = process.argv.slice(2);
const count = Number(countRaw);
const sock = createSocket('udp4');
const lat: number[] = [];
const rcodes: Record<string, number> = {};
let ok = 0;

function once(id: number): Promise<void> {
  const p = new Packet();
  p.header.id = id;
  p.header.rd = 1;
  p.questions.push({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN } as never);
  const buf = p.toBuffer();
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', on);
      rcodes.timeout = (rcodes.timeout ?? 0) + 1;
      resolve();
    }, 1000);
    const on = (m: Buffer): void => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off('message', on);
      lat.push((performance.now() - t0) * 1000);
      const rc = String(m[3]! & 0x0f);
      rcodes[rc] = (rcodes[rc] ?? 0) + 1;
      if (rc === '0') ok++;
      resolve();
    };
    sock.on('message', on);
    sock.send(buf, 53, '127.0.0.11');
  });
}

async function main(): Promise<void> {
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < count; i++) await once((i % 65535) + 1);
  sock.close();
  lat.sort((a, b) => a - b);
  const q = (f: number): number => Math.round(lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] ?? -1);
  process.stdout.write(JSON.stringify({ n: count, ok, p50Us: q(0.5), p99Us: q(0.99), maxUs: Math.round(lat.at(-1) ?? -1), rcodes }) + '\n');
}
void main();
