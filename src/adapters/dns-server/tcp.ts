/**
 * DNS over TCP (RFC 7766) on one accepted connection: 2-byte length framing, several queries per
 * connection (pipelined, replies in completion order), an idle timeout, and a bound on frames in
 * flight (excess frames are dropped and counted). The server (server.ts) bounds the connections.
 */
import type { Socket } from 'node:net';
import type { DnsHandler } from './handler.js';
import { countDrop } from './stats.js';
import type { SandboxTag } from './types.js';
import { plainAddress } from './udp.js';

const MAX_TCP_INFLIGHT = 64;

/** Serves queries on `c` (`tag`: the networks of the sandbox it came from, read per frame) until it closes. */
export function serveTcpConnection(c: Socket, handler: DnsHandler, tag: SandboxTag | undefined, closing: () => boolean, idleTimeoutMs: number): void {
  c.setNoDelay(true);
  c.setTimeout(idleTimeoutMs, () => {
    countDrop(handler.stats, 'tcp-idle');
    c.destroy();
  });
  let buf: Buffer = Buffer.alloc(0);
  let inflight = 0;
  c.on('error', () => countDrop(handler.stats, 'tcp-error'));
  c.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const frame = Buffer.from(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
      if (inflight >= MAX_TCP_INFLIGHT) {
        countDrop(handler.stats, 'tcp-inflight');
        continue;
      }
      inflight++;
      const replies = handler.handle(frame, plainAddress(c.remoteAddress ?? ''), c.remotePort ?? 0, 'tcp', (out) => {
        inflight--;
        if (c.destroyed || closing()) return;
        const framed = Buffer.allocUnsafe(out.length + 2);
        framed.writeUInt16BE(out.length, 0);
        out.copy(framed, 2);
        c.write(framed);
      }, tag?.networks);
      if (!replies) inflight--; // dropped: no reply will come
    }
  });
}
