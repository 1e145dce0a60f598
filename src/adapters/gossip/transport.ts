/**
 * The gossip edge: one UDP socket for SWIM datagrams and one TCP listener for streams
 * (push-pull, TCP fallback pings), both on the advertised address and port, like
 * memberlist's NetTransport. Streams are length-framed: [u32 big-endian length][payload],
 * one request and one reply per connection, bounded in size and time. An optional cipher
 * (the keyring) seals every datagram and stream frame; what cannot be opened is dropped and
 * counted by the caller, never thrown.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { MeshError } from '../../core/errors.js';

export interface PacketCipher {
  seal(plain: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): { ok: true; bytes: Uint8Array } | { ok: false; reason: string };
}

export interface TransportHandlers {
  packet(from: string, bytes: Uint8Array): void;
  /** Server side of a stream: returns the reply (empty = close without reply). */
  stream(from: string, bytes: Uint8Array): Uint8Array;
  /** A datagram or stream that failed before reaching the core (decrypt, framing, oversize). */
  drop(reason: string): void;
}

export interface TransportOptions {
  bindAddr: string;
  port: number;
  maxStreamBytes: number;
  streamTimeoutMs: number;
  cipher?: PacketCipher | undefined;
}

export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new MeshError('MESHD_BAD_ARGUMENT', `bad gossip address ${addr}`);
  return { host: addr.slice(0, i), port };
}

/** Reads one length-prefixed frame from a socket, bounded by maxBytes. */
function readFrame(sock: Socket, maxBytes: number, onFrame: (b: Uint8Array) => void, onError: (reason: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let want = -1;
  let done = false;
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (want < 0 && buf.length >= 4) {
      want = buf.readUInt32BE(0);
      if (want > maxBytes) {
        done = true;
        onError('stream-oversized');
        return;
      }
    }
    if (want >= 0 && buf.length >= 4 + want) {
      done = true;
      onFrame(new Uint8Array(buf.subarray(4, 4 + want)));
    }
  });
  sock.on('end', () => {
    if (!done) {
      done = true;
      onError('stream-truncated');
    }
  });
}

function frame(bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}

export class GossipTransport {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly open = new Set<Socket>();

  constructor(private readonly o: TransportOptions, private readonly h: TransportHandlers) {}

  async start(): Promise<void> {
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    udp.on('message', (msg, rinfo) => {
      const from = `${rinfo.address}:${rinfo.port}`;
      const opened = this.unseal(msg);
      if (opened) this.h.packet(from, opened);
    });
    udp.on('error', () => this.h.drop('udp-error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.o.port, this.o.bindAddr, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    try {
      udp.setRecvBufferSize(4 << 20);
      udp.setSendBufferSize(4 << 20);
    } catch {
      /* kernel caps apply; defaults work */
    }
    this.udp = udp;

    const tcp = createServer((sock) => this.serveStream(sock));
    tcp.on('error', () => this.h.drop('tcp-error'));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.o.port, this.o.bindAddr, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
  }

  private unseal(msg: Uint8Array): Uint8Array | undefined {
    if (!this.o.cipher) return msg;
    const r = this.o.cipher.open(msg);
    if (!r.ok) {
      this.h.drop(r.reason);
      return undefined;
    }
    return r.bytes;
  }
  private seal(bytes: Uint8Array): Uint8Array {
    return this.o.cipher ? this.o.cipher.seal(bytes) : bytes;
  }

  private serveStream(sock: Socket): void {
    this.open.add(sock);
    sock.on('close', () => this.open.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(this.o.streamTimeoutMs, () => {
      this.h.drop('stream-timeout');
      sock.destroy();
    });
    const from = `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`;
    readFrame(sock, this.o.maxStreamBytes, (req) => {
      const plain = this.unseal(req);
      if (!plain) return void sock.destroy();
      let reply: Uint8Array;
      try {
        reply = this.h.stream(from, plain);
      } catch {
        this.h.drop('stream-handler');
        return void sock.destroy();
      }
      if (reply.length === 0) return void sock.end();
      sock.end(frame(this.seal(reply)));
    }, (reason) => {
      this.h.drop(reason);
      sock.destroy();
    });
  }

  sendPacket(to: string, bytes: Uint8Array): number {
    if (!this.udp) return 0;
    const { host, port } = splitAddr(to);
    const out = this.seal(bytes);
    this.udp.send(out, port, host, () => undefined);
    return out.length;
  }

  /** Client side of a stream: resolves with the reply, or null on refusal, reset, timeout or bad reply. */
  request(to: string, bytes: Uint8Array): Promise<Uint8Array | null> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (v: Uint8Array | null) => {
        if (settled) return;
        settled = true;
        sock.destroy();
        resolve(v);
      };
      let host: string;
      let port: number;
      try {
        ({ host, port } = splitAddr(to));
      } catch {
        resolve(null);
        return;
      }
      const sock = createConnection({ host, port, localAddress: this.o.bindAddr });
      this.open.add(sock);
      sock.on('close', () => {
        this.open.delete(sock);
        finish(null);
      });
      sock.on('error', () => finish(null));
      sock.setTimeout(this.o.streamTimeoutMs, () => finish(null));
      sock.on('connect', () => sock.write(frame(this.seal(bytes))));
      readFrame(sock, this.o.maxStreamBytes, (reply) => {
        const plain = this.unseal(reply);
        finish(plain ?? null);
      }, () => finish(null));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }
}
