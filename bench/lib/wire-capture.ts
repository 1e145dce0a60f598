/**
 * Wire-byte breakdown for the gossip bench: what the lab's underlay carries, by protocol and by kind of
 * frame, read from a tcpdump capture of the lab switch's ports (every frame between two hosts enters the
 * switch exactly once). The switch port counters (netns-cluster.ts `wireBytes`) give the total; this says where it
 * goes: UDP datagrams (headers vs payload, size histogram) and TCP (connections, control frames without
 * payload — SYN, bare ACK, FIN — vs data frames). Used for both kinds alike, so the two can be compared.
 *
 * Only headers are captured (snaplen 128): the payload is encrypted on the meshd side anyway; meshd's own
 * per-kind payload counters come from /v1/gossip/metrics (core `bytesOutByKind`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { MeshError } from '../../src/core/errors.js';
import { switchNs } from '../../src/lab/plan.js';

export interface WireBreakdown {
  seconds: number;
  /** Bytes per second per member (divide by the member count given to `summarize`). */
  perMemberBps: {
    total: number;
    udp: number;
    udpHeaders: number;
    tcp: number;
    tcpControl: number;
    tcpData: number;
    other: number;
  };
  /** Per second per member. */
  perMemberRate: { udpFrames: number; tcpFrames: number; tcpConnections: number };
  /** Mean UDP payload bytes per datagram, and TCP bytes per connection (all frames of the connection). */
  udpPayloadMean: number;
  tcpBytesPerConnection: number;
  /** UDP payload sizes: bucket upper bound → share of datagrams (0..1). */
  udpSizes: Record<string, number>;
}

interface Frame {
  len: number;
  proto: 'udp' | 'tcp' | 'other';
  /** Transport payload bytes (UDP: datagram payload; TCP: segment payload). */
  payload: number;
  syn: boolean;
  ack: boolean;
  key: string;
}

/** Link types read: Ethernet (1) and Linux cooked captures v1 (113) and v2 (276, what `-i any` gives now). */
const LINK_ETHERNET = 1;
const LINK_SLL = 113;
const LINK_SLL2 = 276;
/** Per link type: header bytes, where its EtherType sits. */
const LINKS: Readonly<Record<number, { head: number; etherType: number }>> = {
  [LINK_ETHERNET]: { head: 14, etherType: 12 },
  [LINK_SLL]: { head: 16, etherType: 14 },
  [LINK_SLL2]: { head: 20, etherType: 0 },
};

/**
 * One frame's IPv4 + UDP/TCP headers (IHL honoured). `len` is the Ethernet frame length without FCS, what
 * the port counters count: a cooked header (16 or 20 bytes) is replaced by the 14-byte Ethernet header.
 */
export function parseFrame(b: Buffer, origLen: number, link = LINK_ETHERNET): Frame {
  const l = LINKS[link] ?? LINKS[LINK_ETHERNET]!;
  const mac = l.head;
  const len = origLen - mac + 14;
  const other: Frame = { len, proto: 'other', payload: 0, syn: false, ack: false, key: '' };
  if (b.length < mac + 20 || b.readUInt16BE(l.etherType) !== 0x0800) return other;
  const ip = mac;
  const ihl = (b[ip]! & 0x0f) * 4;
  const totalLen = b.readUInt16BE(ip + 2);
  const proto = b[ip + 9];
  const l4 = ip + ihl;
  const src = `${b[ip + 12]}.${b[ip + 13]}.${b[ip + 14]}.${b[ip + 15]}`;
  const dst = `${b[ip + 16]}.${b[ip + 17]}.${b[ip + 18]}.${b[ip + 19]}`;
  if (proto === 17 && b.length >= l4 + 8) {
    return { len, proto: 'udp', payload: b.readUInt16BE(l4 + 4) - 8, syn: false, ack: false, key: '' };
  }
  if (proto === 6 && b.length >= l4 + 14) {
    const sport = b.readUInt16BE(l4);
    const dport = b.readUInt16BE(l4 + 2);
    const off = (b[l4 + 12]! >> 4) * 4;
    const flags = b[l4 + 13]!;
    const a = `${src}:${sport}`;
    const z = `${dst}:${dport}`;
    return { len, proto: 'tcp', payload: totalLen - ihl - off, syn: (flags & 0x02) !== 0, ack: (flags & 0x10) !== 0, key: a < z ? `${a}-${z}` : `${z}-${a}` };
  }
  return other;
}

/** Frames of a classic pcap stream (little- or big-endian; Ethernet or Linux cooked link type). */
export function parsePcap(buf: Buffer): Frame[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) {
    throw new MeshError('MESHD_BAD_ARGUMENT', 'not a pcap stream');
  }
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20) & 0xffff;
  if (!LINKS[link]) throw new MeshError('MESHD_BAD_ARGUMENT', `pcap link type ${link} not handled`);
  const out: Frame[] = [];
  for (let o = 24; o + 16 <= buf.length;) {
    const incl = u32(o + 8);
    const orig = u32(o + 12);
    if (o + 16 + incl > buf.length) break; // the last record may be cut by the stop
    out.push(parseFrame(buf.subarray(o + 16, o + 16 + incl), orig, link));
    o += 16 + incl;
  }
  return out;
}

const BUCKETS = [16, 32, 64, 128, 256, 512, 1024, 1500, 65_535];

export function summarize(frames: readonly Frame[], members: number, seconds: number): WireBreakdown {
  const per = (x: number): number => Math.round((x / members / seconds) * 10) / 10;
  let udp = 0;
  let udpN = 0;
  let udpPay = 0;
  let tcp = 0;
  let tcpN = 0;
  let tcpCtl = 0;
  let other = 0;
  let conns = 0;
  const sizes = new Map<number, number>();
  for (const f of frames) {
    if (f.proto === 'udp') {
      udp += f.len;
      udpN++;
      udpPay += f.payload;
      const b = BUCKETS.find((x) => f.payload <= x)!;
      sizes.set(b, (sizes.get(b) ?? 0) + 1);
    } else if (f.proto === 'tcp') {
      tcp += f.len;
      tcpN++;
      if (f.payload <= 0) tcpCtl += f.len;
      if (f.syn && !f.ack) conns++;
    } else other += f.len;
  }
  const udpSizes: Record<string, number> = {};
  for (const b of BUCKETS) if (sizes.has(b)) udpSizes[`<=${b}`] = Math.round((sizes.get(b)! / udpN) * 1000) / 1000;
  return {
    seconds: Math.round(seconds * 10) / 10,
    perMemberBps: {
      total: per(udp + tcp + other), udp: per(udp), udpHeaders: per(udp - udpPay), tcp: per(tcp), tcpControl: per(tcpCtl), tcpData: per(tcp - tcpCtl), other: per(other),
    },
    perMemberRate: { udpFrames: per(udpN), tcpFrames: per(tcpN), tcpConnections: per(conns) },
    udpPayloadMean: udpN ? Math.round(udpPay / udpN) : 0,
    tcpBytesPerConnection: conns ? Math.round(tcp / conns) : 0,
    udpSizes,
  };
}

/** A running capture on the lab switch's bridge; `stop()` ends it and returns the breakdown. */
export class WireCapture {
  private readonly chunks: Buffer[] = [];
  private readonly t0 = performance.now();
  private exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (c: Buffer) => this.chunks.push(c));
    child.stderr!.resume();
    this.exited = new Promise((r) => child.once('close', () => r()));
  }

  /**
   * Starts tcpdump in the switch namespace of `lab` (headers only) on every port, inbound only: a frame
   * host A → host B enters the switch once (A's port) and leaves once (B's port); a tap on the bridge device
   * itself would miss forwarded frames. Resolves once it is listening.
   */
  static async start(lab: string): Promise<WireCapture> {
    const child = spawn('ip', ['netns', 'exec', switchNs(lab), 'tcpdump', '-i', 'any', '-s', '128', '-U', '-w', '-', '-Q', 'in'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const c = new WireCapture(child);
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new MeshError('MESHD_EXEC_FAILED', `tcpdump in ${switchNs(lab)} did not start in 5 s: ${err.trim()}`)), 5000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('listening on')) (clearTimeout(timer), resolve());
      });
      child.once('error', (e) => (clearTimeout(timer), reject(new MeshError('MESHD_EXEC_FAILED', `tcpdump: ${e.message}`))));
      child.once('exit', (code) => (clearTimeout(timer), reject(new MeshError('MESHD_EXEC_FAILED', `tcpdump exited ${code}: ${err.trim()}`))));
    });
    return c;
  }

  async stop(members: number): Promise<WireBreakdown> {
    const secs = (performance.now() - this.t0) / 1000;
    this.child.kill('SIGINT');
    await this.exited;
    return summarize(parsePcap(Buffer.concat(this.chunks)), members, secs);
  }
}
