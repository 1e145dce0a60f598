/**
 * Entry point of a DNS worker process (forked by workers.ts). It serves the node's DNS UDP sockets next
 * to the agent — same sockets, passed over IPC; the kernel gives each datagram to one reader — from its
 * own replica of the registry (full snapshots from the agent, applied as diffs) with its own answer cache
 * and forwarder (its share of the pending-forward bound). TCP stays in the agent.
 *
 * Lifetime: exits when told to stop or as soon as the IPC channel closes (the agent died or dropped it),
 * so a worker never outlives its agent. Counters go to the agent every `statsMs` and on request.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { DnsRegistry } from '../../core/dns/registry.js';
import { applySnapshot } from '../../core/dns/snapshot.js';
import { Forwarder } from './forwarder.js';
import { DnsHandler, type NetworksRef } from './handler.js';
import { serveUdp, useLiteralLookup } from './udp.js';
import { chooseUdpPath, type UdpPath } from './native-udp.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';
import { emptySocketCounters, type UdpSocketCounters } from './stats.js';

interface Served {
  readonly sock: UdpSocket;
  readonly ref: NetworksRef;
  readonly counters: UdpSocketCounters;
}

function main(): void {
  if (!process.send) {
    process.stderr.write('dns worker: must be started by the agent (no IPC channel)\n');
    process.exit(2);
  }
  const send = (m: FromWorker): void => {
    if (process.connected) process.send!(m);
  };
  const registry = new DnsRegistry();
  const served = new Map<number, Served>();
  let handler: DnsHandler | undefined;
  let forwarder: Forwarder | undefined;
  let udpPath: UdpPath | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const report = (): void => {
    if (handler) send({ t: 'stats', stats: handler.snapshot(), generation: registry.generation, sockets: [...served.values()].map((s) => ({ ...s.counters, fds: [...s.counters.fds] })) });
  };
  const stop = (code: number): void => {
    if (closing) return;
    closing = true;
    if (statsTimer) clearInterval(statsTimer);
    report();
    forwarder?.close();
    for (const s of served.values()) {
      try {
        s.sock.close();
      } catch {
        /* already closed */
      }
    }
    served.clear();
    // Let the last report flush before the channel goes.
    setImmediate(() => process.exit(code));
  };

  const init = (o: WorkerInit): void => {
    forwarder = new Forwarder({ upstreams: o.upstreams, timeoutMs: o.forwardTimeoutMs, maxPending: o.maxPendingForwards });
    const defaults = o.defaultNetworks;
    handler = new DnsHandler({
      registry,
      forwarder,
      networksOf: () => defaults ?? undefined,
      ttlSec: o.ttlSec,
      maxUdpPayload: o.maxUdpPayload,
      cacheMaxEntries: o.cacheMaxEntries,
    });
    udpPath = chooseUdpPath(o.udp === 'native' ? 'auto' : 'js');
    if (o.udp === 'native' && udpPath.path !== 'native') send({ t: 'error', message: `native UDP path unavailable in the worker, serving with dgram: ${udpPath.reason}` });
    statsTimer = setInterval(report, o.statsMs);
    send({ t: 'ready' });
  };

  process.on('message', (m: ToWorker, handle: unknown) => {
    if (closing) {
      (handle as UdpSocket | undefined)?.close?.();
      return;
    }
    switch (m.t) {
      case 'init':
        init(m.init);
        return;
      case 'snapshot':
        try {
          applySnapshot(registry, m.snap, performance.now());
        } catch (e) {
          send({ t: 'error', message: `snapshot rejected: ${(e as Error).message}` });
        }
        return;
      case 'udp': {
        const sock = handle as UdpSocket | undefined;
        if (!sock || !handler) {
          send({ t: 'error', message: `udp ${m.id}: ${sock ? 'not initialised' : 'no socket handle received'}` });
          sock?.close();
          return;
        }
        // A second copy under one id would leave the first one served by nobody's counters: say so.
        if (served.has(m.id)) send({ t: 'error', message: `udp ${m.id}: received again while already served (fds ${served.get(m.id)!.counters.fds.join(',')})` });
        useLiteralLookup(sock);
        const ref: NetworksRef = { networks: m.networks ? Object.freeze([...m.networks]) : undefined };
        const counters = emptySocketCounters(m.id);
        served.set(m.id, { sock, ref, counters });
        serveUdp(sock, handler, ref, () => closing, udpPath, (reason) => send({ t: 'error', message: `udp ${m.id}: native path refused the socket, serving with dgram: ${reason}` }), counters);
        return;
      }
      case 'retag': {
        const s = served.get(m.id);
        if (s) s.ref.networks = m.networks ? Object.freeze([...m.networks]) : undefined;
        return;
      }
      case 'close-udp': {
        const s = served.get(m.id);
        served.delete(m.id);
        if (!s) return send({ t: 'closed-udp', id: m.id });
        try {
          s.sock.close(() => send({ t: 'closed-udp', id: m.id }));
        } catch {
          send({ t: 'closed-udp', id: m.id });
        }
        return;
      }
      case 'stats?':
        report();
        return;
      case 'stop':
        stop(0);
        return;
    }
  });
  process.on('disconnect', () => stop(0));
  process.on('SIGTERM', () => stop(0));
}

main();
