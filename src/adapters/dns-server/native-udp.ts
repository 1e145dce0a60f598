/**
 * The native UDP path of the DNS server (issue 18 item 5): the same DnsHandler, fed in batches by a small
 * N-API addon (native/meshd_udp.c) instead of dgram's one-callback-per-datagram path.
 *
 * Why: at saturation most of our CPU per query was Node's datagram path (a plain dgram echo measured
 * 0.55× dnsmasq's CPU per query before any DNS work). The addon polls the socket with libuv on the node
 * loop (no threads), reads up to 64 datagrams per recvmmsg(2), calls JS once per batch with one Buffer
 * holding them all, and sends the batch's answers with one sendmmsg(2).
 *
 * - The socket stays a dgram socket (bound by us, or passed over IPC from a namespace binder or to a DNS
 *   worker): dgram's reading is stopped and the addon polls a dup of its fd. When the dgram socket closes
 *   the dup is closed too (a dup left open would keep the port bound and a sandbox namespace alive).
 * - Answers made during the batch (cache hits, local answers, errors: nearly all) go out together;
 *   answers that come later (forwards) go out one by one with sendto(2) to the source address copied
 *   when the batch ended.
 * - The pure-JS path (udp.ts) stays the automatic fallback: `chooseUdpPath('auto')` picks native when the
 *   addon loads on Linux, else JS with the reason, once at start; the server says which in its stats.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../../core/errors.js';
import type { DnsHandler, NetworksRef } from './handler.js';
import { countDrop, emptySocketCounters, type UdpSocketCounters } from './stats.js';

/** What the addon exports (see native/meshd_udp.c for the contract). */
export interface NativeUdpAddon {
  open(fd: number, meta: Buffer, onBatch: (data: Buffer, count: number) => void): unknown;
  /** Returns how many of the first `n` replies were NOT sent (send buffer full, address refused). */
  sendBatch(h: unknown, replies: Buffer[], indices: Uint16Array, n: number): number;
  /** 1 when sent, else −errno. */
  sendTo(h: unknown, buf: Buffer, sockaddr: Buffer): number;
  ntop(sockaddr: Buffer): [string, number];
  close(h: unknown): void;
  /** The dup this handle polls; before close() only (absent in an addon built before it: diagnostics only). */
  fd?: (h: unknown) => number;
  readonly BATCH: number;
  readonly META_BYTES: number;
  /** native/meshd_netns.c (absent in an addon built before it): the DNS sockets bound inside a task namespace from this thread. */
  bindInNetns?: (nsPath: string, addr: string, port: number) => [number, number];
}

/** The UDP path a server runs: chosen once at start. */
export interface UdpPath {
  readonly path: 'native' | 'js';
  /** Why (the addon's file, or why the JS path is used). */
  readonly reason: string;
  readonly addon: NativeUdpAddon | undefined;
}

/** `auto`: native when the addon loads, else JS. `native`: fail when it does not. `js`: dgram only. */
export type UdpPathChoice = 'auto' | 'native' | 'js';

export const ADDON_RELATIVE = join('native', 'build', 'Release', 'meshd_udp.node');

/**
 * Where the addon is: MESHD_NATIVE_UDP (a file) when set, else `native/build/Release/meshd_udp.node`
 * in the first ancestor directory of this module that has it — tsc's dist/src/adapters/dns-server/ and
 * the bundles in dist/src/bin/ sit at different depths under the same repository root.
 */
export function findAddon(from = dirname(fileURLToPath(import.meta.url)), env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.MESHD_NATIVE_UDP) return env.MESHD_NATIVE_UDP;
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const p = join(dir, ADDON_RELATIVE);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/** Loads the addon (`file` null: not found), or says why not (never throws). */
export function loadNativeUdp(platform: string = process.platform, file: string | null = findAddon()): { addon: NativeUdpAddon; file: string } | { addon: undefined; reason: string } {
  if (platform !== 'linux') return { addon: undefined, reason: `recvmmsg/sendmmsg need Linux (platform ${platform})` };
  if (!file) return { addon: undefined, reason: `addon not built (${ADDON_RELATIVE} not found; run native-scripts/setup.sh)` };
  try {
    const addon = createRequire(import.meta.url)(file) as NativeUdpAddon;
    for (const k of ['open', 'sendBatch', 'sendTo', 'ntop', 'close'] as const) {
      if (typeof addon[k] !== 'function') return { addon: undefined, reason: `addon ${file} has no ${k}()` };
    }
    return { addon, file };
  } catch (e) {
    return { addon: undefined, reason: `addon ${file} failed to load: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** Resolves a choice into the path this process runs. `native` without a loadable addon is a config error. */
export function chooseUdpPath(choice: UdpPathChoice, load: typeof loadNativeUdp = loadNativeUdp): UdpPath {
  if (choice !== 'auto' && choice !== 'native' && choice !== 'js') throw new MeshError('MESHD_BAD_CONFIG', `dns: udp path must be auto, native or js, got ${JSON.stringify(choice)}`);
  if (choice === 'js') return { path: 'js', reason: 'configured', addon: undefined };
  const l = load();
  if (l.addon) return { path: 'native', reason: `addon ${l.file}`, addon: l.addon };
  if (choice === 'native') throw new MeshError('MESHD_BAD_CONFIG', `dns: native UDP path requested but unavailable: ${l.reason}`);
  return { path: 'js', reason: l.reason, addon: undefined };
}

interface DgramHandle {
  fd?: number;
  recvStop?: () => number;
}

/** dgram's handle of a bound socket (internal `Symbol(state symbol)`.handle, as udp.ts's useLiteralLookup). */
function dgramHandle(sock: UdpSocket): DgramHandle | undefined {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: DgramHandle } | undefined>)[sym] : undefined;
  return state?.handle ?? undefined;
}

/** The fd of a bound dgram socket in this process (undefined: not bound, or an unknown dgram layout). */
export function dgramFd(sock: UdpSocket): number | undefined {
  const fd = dgramHandle(sock)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** The native handle's own descriptor, when the addon can say (diagnostics: matches `ss -p`). */
function nativeFd(addon: NativeUdpAddon, h: unknown): number[] {
  const fd = typeof addon.fd === 'function' ? addon.fd(h) : -1;
  return fd >= 0 ? [fd] : [];
}

const AF_INET = 2;
const AF_INET6 = 10;

/**
 * Serves `sock` through the addon: same handler, same counters, same `ref` networks as serveUdp. Throws
 * MESHD_INTERNAL when the socket's fd cannot be had (then nothing changed: the caller serves it with
 * the JS path). Returns a function that stops the native reading (also run when the socket closes).
 */
export function serveUdpNative(addon: NativeUdpAddon, sock: UdpSocket, handler: DnsHandler, ref: NetworksRef | undefined, closing: () => boolean, counters: UdpSocketCounters = emptySocketCounters()): () => void {
  const h0 = dgramHandle(sock);
  const fd = h0?.fd;
  if (!h0 || typeof fd !== 'number' || fd < 0 || typeof h0.recvStop !== 'function') throw new MeshError('MESHD_INTERNAL', 'dns: no file descriptor on this UDP socket (not bound, or an unknown dgram layout)');
  const stats = handler.stats;
  const BATCH = addon.BATCH;
  const M = addon.META_BYTES;
  const meta = Buffer.alloc(BATCH * M);
  const u32 = new Uint32Array(meta.buffer, meta.byteOffset, meta.length >> 2);
  const W = M >> 2;
  const replies: Buffer[] = new Array<Buffer>(BATCH);
  const indices = new Uint16Array(BATCH);
  let n = 0;
  let inBatch = -1;
  let batchNo = 0;
  let stopped = false;
  // Sources repeat (one client per sandbox socket): keep the last address string.
  let lastFam = 0;
  let lastKey = 0;
  let lastAddr = '';

  const addressOf = (o: number): [string, number] => {
    const fam = meta[o + 16]! | (meta[o + 17]! << 8);
    const port = (meta[o + 18]! << 8) | meta[o + 19]!;
    const w = o >> 2;
    let key: number;
    if (fam === AF_INET) key = u32[w + 5]!;
    else if (fam === AF_INET6 && u32[w + 6] === 0 && u32[w + 7] === 0 && meta[o + 32] === 0 && meta[o + 33] === 0 && meta[o + 34] === 0xff && meta[o + 35] === 0xff) key = u32[w + 9]!; // ::ffff:a.b.c.d
    else return [addon.ntop(meta.subarray(o + 16, o + 16 + u32[w + 2]!))[0], port];
    if (key !== lastKey || lastFam === 0) {
      const b = fam === AF_INET ? o + 20 : o + 36;
      lastAddr = `${meta[b]}.${meta[b + 1]}.${meta[b + 2]}.${meta[b + 3]}`;
      lastKey = key;
      lastFam = fam;
    }
    return [lastAddr, port];
  };

  const onBatch = (data: Buffer, count: number): void => {
    const batch = ++batchNo;
    inBatch = batch;
    n = 0;
    counters.read += count;
    try {
      for (let i = 0; i < count; i++) {
        const o = i * M;
        const w = i * W;
        if (u32[w + 3] !== 0) {
          counters.errors++;
          countDrop(stats, 'udp-truncated');
          continue;
        }
        const off = u32[w]!;
        const msg = data.subarray(off, off + u32[w + 1]!);
        const [address, port] = addressOf(o);
        let later: Buffer | undefined;
        const before = n;
        const reply = (out: Buffer): void => {
          if (stopped || closing()) return;
          if (inBatch === batch) {
            replies[n] = out;
            indices[n++] = i;
            return;
          }
          if (addon.sendTo(h, out, later!) < 0) {
            counters.errors++;
            countDrop(stats, 'udp-send-error');
          } else counters.answered++;
        };
        if (handler.handle(msg, address, port, 'udp', reply, ref?.networks) && n === before) {
          later = Buffer.from(meta.subarray(o + 16, o + 16 + u32[w + 2]!)); // answered after this batch
        }
      }
    } finally {
      inBatch = -1;
      if (n > 0 && !stopped) {
        const failed = addon.sendBatch(h, replies, indices, n);
        counters.answered += n - failed;
        counters.errors += failed;
        for (let k = 0; k < failed; k++) countDrop(stats, 'udp-send-error');
      }
      replies.fill(undefined as unknown as Buffer, 0, n);
      n = 0;
    }
  };

  const h = addon.open(fd, meta, onBatch);
  h0.recvStop();
  counters.path = 'native';
  counters.fds = [fd, ...nativeFd(addon, h)];
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    addon.close(h);
  };
  sock.on('error', () => {
    counters.errors++;
    countDrop(stats, 'udp-send-or-socket-error');
  });
  sock.once('close', stop);
  return stop;
}
