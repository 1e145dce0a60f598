/**
 * The gossip edge: one UDP socket for SWIM datagrams and one TCP listener for streams
 * (push-pull, TCP fallback pings), both on the advertised address and port, like
 * memberlist's NetTransport. Streams are length-framed: [u32 big-endian header][payload], one
 * request and one reply per connection, bounded in size and time. A request or reply may be
 * several frames (a push-pull state over maxPushPullBytes is split, core/gossip/wire.ts): the
 * header's top bit says "more frames follow", its low 31 bits are the length. Each frame is bounded
 * by maxStreamBytes and sealed on its own, and a message holds at most maxStreamFrames frames (a
 * peer without the bit writes exactly what it always did: one frame, top bit clear; an old reader
 * sees a flagged frame as oversized and refuses it). An optional cipher (the keyring) seals every
 * datagram and stream frame; what cannot be opened is dropped and counted by the caller, never thrown.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { formatHostPort, parseHostPort } from '../../core/hostport.js';
import { isIp6 } from '../../core/ipam/addr6.js';

export interface PacketCipher {
  seal(plain: Uint8Array): Uint8Array;
  open(sealed: Uint8Array): { ok: true; bytes: Uint8Array } | { ok: false; reason: string };
}

export interface TransportHandlers {
  packet(from: string, bytes: Uint8Array): void;
  /** Server side of a stream: its frames in, the reply's frames out (none = close without reply). */
  stream(from: string, frames: Uint8Array[]): Uint8Array[];
  /** A datagram or stream that failed before reaching the core (decrypt, framing, oversize). */
  drop(reason: string): void;
}

export interface TransportOptions {
  bindAddr: string;
  port: number;
  /** Largest frame (after sealing) read from a stream. */
  maxStreamBytes: number;
  /** Most frames one stream message may have (default 1). */
  maxStreamFrames?: number;
  streamTimeoutMs: number;
  cipher?: PacketCipher | undefined;
}

/** `ip:port` or `[ipv6]:port` → host and port (core/hostport.ts; an IPv6 underlay's members are bracketed). */
export function splitAddr(addr: string): { host: string; port: number } {
  return parseHostPort(addr, 'gossip address');
}

const MORE = 0x8000_0000;

/**
 * Reads one message (1..maxFrames length-prefixed frames, the last without the MORE bit) from a
 * socket, each frame bounded by maxBytes. Frames are cut out as they complete, so at most one
 * partial frame is buffered beyond the finished ones.
 */
function readFrames(sock: Socket, maxBytes: number, maxFrames: number, onFrames: (f: Uint8Array[]) => void, onError: (reason: string) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  const frames: Uint8Array[] = [];
  let done = false;
  const fail = (reason: string): void => {
    done = true;
    onError(reason);
  };
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (!done && buf.length >= 4) {
      const head = buf.readUInt32BE(0);
      const want = head & ~MORE & 0x7fff_ffff;
      const more = (head & MORE) !== 0;
      if (want > maxBytes) return fail('stream-oversized');
      if (more && frames.length + 1 >= maxFrames) return fail('stream-too-many-frames');
      if (buf.length < 4 + want) return;
      frames.push(new Uint8Array(buf.subarray(4, 4 + want)));
      buf = buf.subarray(4 + want);
      if (!more) {
        done = true;
        onFrames(frames);
      }
    }
  });
  sock.on('end', () => {
    if (!done) fail('stream-truncated');
  });
}

function frame(bytes: Uint8Array, more = false): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE((bytes.length | (more ? MORE : 0)) >>> 0, 0);
  return Buffer.concat([head, bytes]);
}

/** One message's frames on the wire, each sealed. */
function frameAll(frames: readonly Uint8Array[], seal: (b: Uint8Array) => Uint8Array): Buffer {
  return Buffer.concat(frames.map((f, i) => frame(seal(f), i < frames.length - 1)));
}

export class GossipTransport {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly open = new Set<Socket>();

  constructor(private readonly o: TransportOptions, private readonly h: TransportHandlers) {}

  async start(): Promise<void> {
    // An IPv6 underlay (issue 19 §2) binds a udp6 socket on its address; IPv4 stays udp4.
    const udp = createSocket({ type: isIp6(this.o.bindAddr) ? 'udp6' : 'udp4', reuseAddr: false });
    udp.on('message', (msg, rinfo) => {
      const from = formatHostPort(rinfo.address, rinfo.port);
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
  /** Every frame opened, or undefined (counted) when one cannot be. */
  private unsealAll(frames: readonly Uint8Array[]): Uint8Array[] | undefined {
    const out: Uint8Array[] = [];
    for (const f of frames) {
      const p = this.unseal(f);
      if (!p) return undefined;
      out.push(p);
    }
    return out;
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
    const from = formatHostPort(sock.remoteAddress ?? '?', sock.remotePort ?? 0);
    readFrames(sock, this.o.maxStreamBytes, this.o.maxStreamFrames ?? 1, (req) => {
      const plain = this.unsealAll(req);
      if (!plain) return void sock.destroy();
      let reply: Uint8Array[];
      try {
        reply = this.h.stream(from, plain);
      } catch {
        this.h.drop('stream-handler');
        return void sock.destroy();
      }
      if (reply.length === 0) return void sock.end();
      sock.end(frameAll(reply, (b) => this.seal(b)));
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

  /** Client side of a stream: resolves with the reply's frames, or null on refusal, reset, timeout or bad reply. */
  request(to: string, frames: readonly Uint8Array[]): Promise<Uint8Array[] | null> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (v: Uint8Array[] | null) => {
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
      sock.on('connect', () => sock.write(frameAll(frames, (b) => this.seal(b))));
      readFrames(sock, this.o.maxStreamBytes, this.o.maxStreamFrames ?? 1, (reply) => {
        finish(this.unsealAll(reply) ?? null);
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
