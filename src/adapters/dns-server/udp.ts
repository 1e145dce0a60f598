/**
 * The UDP receive → answer → send loop, shared by the agent's DnsServer and the DNS worker processes
 * (workers.ts) that serve the very same sockets (one socket, several processes reading it: the kernel
 * hands each datagram to exactly one reader).
 *
 * Sends pass no callback (a synchronous send then costs no extra tick; errors arrive as 'error'). Our
 * replies always go to the numeric address a datagram came from, so the socket's `lookup` is replaced by
 * a synchronous identity function when we can: dgram's default (dns.lookup) defers every send to the
 * next tick even for a literal address, which costs a tick-queue round and a closure per reply.
 */
import { createSocket, type Socket as UdpSocket, type SocketType } from 'node:dgram';
import type { DnsHandler, NetworksRef } from './handler.js';
import { countDrop, emptySocketCounters, type UdpSocketCounters } from './stats.js';
import { dgramFd, serveUdpNative, type UdpPath } from './native-udp.js';

/** Sources seen on a dual-stack socket come as ::ffff:a.b.c.d; the agent's mapping wants a.b.c.d. */
export function plainAddress(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

type LookupCb = (err: Error | null, address: string, family: number) => void;

/** dgram `lookup` for sockets that only ever send to numeric addresses: answers at once, no tick. */
export function literalLookup(family: 4 | 6): (host: string, opts: unknown, cb: LookupCb) => void {
  return (host, _opts, cb) => cb(null, host, family);
}

/** A UDP socket whose sends skip the DNS lookup tick (see the file comment). */
export function createDnsUdpSocket(type: SocketType, recvBufferBytes: number): UdpSocket {
  return createSocket({ type, recvBufferSize: recvBufferBytes, sendBufferSize: 1 << 20, lookup: literalLookup(type === 'udp6' ? 6 : 4) as never });
}


/**
 * Answers datagrams arriving on `sock` with `handler` until the socket closes or `closing()` says so.
 * With a native `path` the addon serves it (native-udp.ts); a socket it cannot take (no fd) falls back
 * to dgram, with the reason passed to `onFallback`. Returns the path that serves the socket. `counters`
 * (this process's view of this socket: what it read and answered) are filled in as it serves.
 */
export function serveUdp(sock: UdpSocket, handler: DnsHandler, ref: NetworksRef | undefined, closing: () => boolean, path?: UdpPath, onFallback?: (reason: string) => void, counters: UdpSocketCounters = emptySocketCounters()): 'native' | 'js' {
  if (path?.addon) {
    try {
      serveUdpNative(path.addon, sock, handler, ref, closing, counters);
      return 'native';
    } catch (e) {
      onFallback?.((e as Error).message);
    }
  }
  counters.path = 'js';
  const fd = dgramFd(sock);
  counters.fds = fd === undefined ? [] : [fd];
  sock.on('error', () => {
    counters.errors++;
    countDrop(handler.stats, 'udp-send-or-socket-error');
  });
  sock.on('message', (msg, rinfo) => {
    counters.read++;
    const address = rinfo.address;
    const port = rinfo.port;
    handler.handle(msg, plainAddress(address), port, 'udp', (out) => {
      if (closing()) return;
      counters.answered++;
      sock.send(out, port, address);
    }, ref?.networks);
  });
  return 'js';
}

/**
 * Gives a socket we did not create (received over IPC: a sandbox's 127.0.0.11 socket, or the node's
 * socket in a worker) the same tick-free lookup as createDnsUdpSocket. dgram offers no public way to set
 * `lookup` after creation, so this reaches its internal state (`Symbol(state symbol)`.handle.lookup,
 * stable since Node 12); when that shape is not found the socket keeps the default lookup — slower by a
 * tick per reply, never wrong. Returns whether the faster lookup is in place.
 */
export function useLiteralLookup(sock: UdpSocket): boolean {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: { lookup?: unknown } } | undefined>)[sym] : undefined;
  const handle = state?.handle;
  if (!handle || typeof handle.lookup !== 'function') return false;
  let family: 4 | 6;
  try {
    family = sock.address().family === 'IPv6' ? 6 : 4;
  } catch {
    return false; // not bound (yet): leave it alone
  }
  handle.lookup = (address: string, cb: LookupCb): void => cb(null, address, family);
  return true;
}
