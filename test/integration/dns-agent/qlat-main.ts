/**
 * Query latency probe run inside a task namespace:
 *   ip netns exec <task-ns> node qlat-main.js NAME COUNT [FLOOR_PORT]
 * Sends COUNT A queries for NAME to 127.0.0.11:53 one after another (UDP) and prints JSON
 * { n, ok, p50Us, p99Us, maxUs, rcodes } on stdout. With FLOOR_PORT, each query is followed by the
 * same datagram to a UDP echo process on 127.0.0.1:FLOOR_PORT in the same namespace (echo-main.js),
 * and `floor` gives that round trip's figures: the same client, namespace, kernel path and moment of
 * machine load, with no DNS work at the other end. `extraP50Us` is the median over the pairs of
 * (DNS round trip − the echo round trip right after it): what the DNS answer costs beyond a bare round
 * trip, with the load both saw in common cancelled out.
 */
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import DNS from 'dns2';

const { Packet } = DNS;
const [name = 'web', countRaw = '1000', floorRaw] = process.argv.slice(2);
const count = Number(countRaw);
const floorPort = floorRaw ? Number(floorRaw) : undefined;
const sock = createSocket('udp4');

interface Series { lat: number[]; ok: number; rcodes: Record<string, number>; last: number }
const dns: Series = { lat: [], ok: 0, rcodes: {}, last: NaN };
const floor: Series = { lat: [], ok: 0, rcodes: {}, last: NaN };
const extra: number[] = [];

function once(id: number, to: { host: string; port: number }, s: Series): Promise<void> {
  const p = new Packet();
  p.header.id = id;
  p.header.rd = 1;
  p.questions.push({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN } as never);
  const buf = p.toBuffer();
  const t0 = performance.now();
  s.last = NaN;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', on);
      s.rcodes.timeout = (s.rcodes.timeout ?? 0) + 1;
      resolve();
    }, 1000);
    const on = (m: Buffer): void => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off('message', on);
      s.last = (performance.now() - t0) * 1000;
      s.lat.push(s.last);
      const rc = String(m[3]! & 0x0f);
      s.rcodes[rc] = (s.rcodes[rc] ?? 0) + 1;
      if (rc === '0') s.ok++;
      resolve();
    };
    sock.on('message', on);
    sock.send(buf, to.port, to.host);
  });
}

function figures(s: Series): { p50Us: number; p99Us: number; maxUs: number } {
  const lat = [...s.lat].sort((a, b) => a - b);
  const q = (f: number): number => Math.round(lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] ?? -1);
  return { p50Us: q(0.5), p99Us: q(0.99), maxUs: Math.round(lat.at(-1) ?? -1) };
}

async function main(): Promise<void> {
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < count; i++) {
    const id = (i % 32_000) * 2 + 1;
    await once(id, { host: '127.0.0.11', port: 53 }, dns);
    if (!floorPort) continue;
    await once(id + 1, { host: '127.0.0.1', port: floorPort }, floor);
    if (Number.isFinite(dns.last) && Number.isFinite(floor.last)) extra.push(dns.last - floor.last);
  }
  sock.close();
  const out = { n: count, ok: dns.ok, ...figures(dns), rcodes: dns.rcodes, ...(floorPort ? { floor: { n: count, ok: floor.ok, ...figures(floor) }, extraP50Us: Math.round([...extra].sort((a, b) => a - b)[Math.floor(extra.length / 2)] ?? NaN) } : {}) };
  process.stdout.write(JSON.stringify(out) + '\n');
}
void main();
