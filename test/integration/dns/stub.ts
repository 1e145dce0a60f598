/**
 * Test helpers: a stub upstream resolver on 127.0.0.1 (UDP + TCP, same port) and a small UDP/TCP DNS
 * client. Only loopback; never the internet.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import DNS from 'dns2';

const { Packet } = DNS;

export interface StubUpstream {
  port: number;
  /** IDs and transports of queries the stub received. */
  seen: { id: number; name: string; tcp: boolean }[];
  close(): Promise<void>;
}

/**
 * Answers: `fast.example` → A 192.0.2.1 at once; `slow.example` → after `slowMs`;
 * `big.example` → over UDP an empty TC reply, over TCP 100 A records. Anything else → NXDOMAIN.
 */
export async function startStubUpstream(slowMs = 5000): Promise<StubUpstream> {
  const timers = new Set<NodeJS.Timeout>();
  const seen: StubUpstream['seen'] = [];
  const answer = (msg: Buffer, tcp: boolean): { buf: Buffer; delay: number } | undefined => {
    let req;
    try {
      req = Packet.parse(msg);
    } catch {
      return undefined;
    }
    const q = req.questions[0];
    if (!q) return undefined;
    const name = q.name.toLowerCase();
    seen.push({ id: req.header.id, name, tcp });
    const res = Packet.createResponseFromRequest(req);
    res.header.ra = 1;
    const a = (ip: string) => ({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address: ip });
    let delay = 0;
    if (name === 'fast.example') res.answers.push(a('192.0.2.1') as never);
    else if (name === 'slow.example') {
      res.answers.push(a('192.0.2.2') as never);
      delay = slowMs;
    } else if (name === 'big.example') {
      if (tcp) for (let i = 0; i < 100; i++) res.answers.push(a(`192.0.2.${i + 1}`) as never);
      else res.header.tc = 1;
    } else res.header.rcode = 3;
    return { buf: res.toBuffer(), delay };
  };
  const udp: UdpSocket = createSocket('udp4');
  const tcpSrv: Server = createServer((c: Socket) => {
    let buf = Buffer.alloc(0);
    c.on('error', () => undefined);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const r = answer(Buffer.from(msg), true);
        if (!r) continue;
        const framed = Buffer.concat([Buffer.from([r.buf.length >> 8, r.buf.length & 255]), r.buf]);
        const t = setTimeout(() => {
          timers.delete(t);
          if (!c.destroyed) c.write(framed);
        }, r.delay);
        timers.add(t);
      }
    });
  });
  await new Promise<void>((r) => tcpSrv.listen(0, '127.0.0.1', () => r()));
  const port = (tcpSrv.address() as { port: number }).port;
  await new Promise<void>((r, j) => {
    udp.once('error', j);
    udp.bind(port, '127.0.0.1', () => r());
  });
  udp.on('message', (msg, rinfo) => {
    const r = answer(msg, false);
    if (!r) return;
    const t = setTimeout(() => {
      timers.delete(t);
      udp.send(r.buf, rinfo.port, rinfo.address);
    }, r.delay);
    timers.add(t);
  });
  return {
    port,
    seen,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      udp.close();
      await new Promise<void>((r) => tcpSrv.close(() => r()));
    },
  };
}

/** UDP DNS client matching replies by ID. */
export class UdpClient {
  private readonly sock: UdpSocket = createSocket('udp4');
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  private constructor(private readonly port: number) {
    this.sock.on('message', (m) => {
      if (m.length < 2) return;
      const w = this.waiting.get(m.readUInt16BE(0));
      if (w) {
        this.waiting.delete(m.readUInt16BE(0));
        w(m);
      }
    });
  }

  static async open(port: number): Promise<UdpClient> {
    const c = new UdpClient(port);
    await new Promise<void>((r) => c.sock.bind(0, '127.0.0.1', () => r()));
    return c;
  }

  /** Sends `q` and resolves with the reply (or rejects after `timeoutMs`). */
  ask(q: Buffer, timeoutMs = 2000): Promise<Buffer> {
    const id = q.readUInt16BE(0);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no reply to id ${id} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (b) => {
        clearTimeout(t);
        resolve(b);
      });
      this.sock.send(q, this.port, '127.0.0.1');
    });
  }

  close(): void {
    this.sock.close();
  }
}

/** One query over TCP (RFC 7766 framing); resolves with the reply. */
export function askTcp(port: number, q: Buffer, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error('tcp timeout'));
    }, timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('connect', () => c.write(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])));
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        c.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
  });
}
