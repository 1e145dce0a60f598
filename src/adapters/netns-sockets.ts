/**
 * Sockets bound inside another network namespace, served by this process: a short-lived
 * child (netns-bind-child.js) binds them in the namespace and passes them over IPC. Used to
 * answer DNS at 127.0.0.11:53 inside every task namespace from one server per node.
 *
 * Two ways. First choice, `bindInNetnsNative`: the DNS server's native addon (built from source by
 * setup) calls setns(2) on this thread, binds, and returns (native/meshd_netns.c) — no process, ~1 ms.
 * The fallback when the addon is not built, `bindInNetns`, is one short-lived process per namespace
 * (issue 14 looked at a long-lived binder): a socket lives in the namespace of the thread that created
 * it, so binding in N namespaces needs setns(2), which Node cannot call without an addon. Node can pass
 * the sockets back (its IPC channel carries fds), but a process that stays up can only bind in
 * the one namespace it started in. A long-lived helper would need a non-Node program with setns
 * (e.g. python3 + ctypes, not a meshd dependency) speaking Node's internal IPC handle protocol.
 *
 * So the per-namespace process is made as cheap as a Node start can be, which matters where a
 * process start costs seconds (the IPVS VM under qemu TCG; a starved host):
 *  - it runs WITHOUT the parent's NODE_OPTIONS (preloads such as the VM tests' --import of
 *    v8-flags.js, or --require, are for the parent's program, not for this helper) and with no V8
 *    flags of its own: a flag (--jitless, --no-opt) cost more than it saved — most likely because it
 *    changes V8's flag hash, so Node's built-in code cache is rejected — measured in the
 *    VM, interleaved: plain ~2.0 s per start, --jitless ~3.5 s, --no-opt --no-sparkplug ~3.3 s;
 *  - the child is CommonJS with node: builtins only (netns-bind-child.cts);
 *  - it enters the namespace with `nsenter --net=/run/netns/NS` (util-linux, one small binary):
 *    `ip netns exec` also unshares mounts and remounts /sys, which sockets do not need (the two
 *    measured alike; nsenter is the lighter of them).
 * bench/netns-bind.ts measures it (N namespaces, one after another).
 *
 * Two bounds instead of one, so that starvation does not feed itself: the old single 10 s bound
 * counted the child's own start, so on a starved host (Node starts of 10 s and more) every attempt
 * was killed just before it would have bound, and the caller's retry paid for another start. Now
 * `startupTimeoutMs` (default 60 s) bounds the start — the child says `up` as its first act — and
 * `timeoutMs` (default 10 s) bounds the bind after that, which is immediate unless something is
 * wrong with the namespace.
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { closeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../core/errors.js';
import { NETNS_RUN_DIR } from './netns-dir.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'netns-bind-child.cjs');
const DEFAULT_STARTUP_TIMEOUT_MS = 60_000;

export interface NetnsSockets {
  udp: UdpSocket;
  tcp: Server;
}

/** Refuses anything but a plain namespace name (it becomes a path under /run/netns). */
function checkNetnsName(netns: string): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(netns) || netns === '.' || netns === '..') {
    throw new MeshError('MESHD_BAD_ARGUMENT', `not a namespace name: ${JSON.stringify(netns)}`);
  }
}

/** The command line that runs the bind helper inside the named namespace `netns` (exported for tests). */
export function binderArgv(netns: string, addr: string, port: number): [string, string[]] {
  checkNetnsName(netns);
  return ['nsenter', [`--net=${join(NETNS_RUN_DIR, netns)}`, '--', process.execPath, CHILD, addr, String(port)]];
}

/** The parent's environment without NODE_OPTIONS (see the file comment). */
export function binderEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.NODE_OPTIONS;
  return out;
}

/**
 * Binds a UDP socket and a TCP listener at addr:port inside the named namespace `netns` and returns
 * them, served by this process. Rejects with MESHD_EXEC_FAILED when the helper cannot start within
 * `startupTimeoutMs`, cannot bind within `timeoutMs` of starting, or reports a bind error; a socket
 * that arrived before a failure is closed (it must not stay bound in the namespace).
 */
export function bindInNetns(netns: string, addr: string, port: number, timeoutMs = 10_000, startupTimeoutMs = DEFAULT_STARTUP_TIMEOUT_MS): Promise<NetnsSockets> {
  return new Promise((resolve, reject) => {
    const [file, args] = binderArgv(netns, addr, port);
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: binderEnv(process.env) });
    let udp: UdpSocket | undefined;
    let tcp: Server | undefined;
    let settled = false;
    let stderr = '';
    const fail = (e: MeshError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // a handle that arrived before the failure must not stay bound in the namespace
      udp?.close();
      tcp?.close();
      reject(e);
    };
    const arm = (ms: number, what: string) =>
      setTimeout(() => {
        child.kill('SIGKILL');
        fail(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns} timed out: ${what} (${ms} ms)`));
      }, ms);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timer = arm(startupTimeoutMs, 'the bind helper did not start');
    child.on('message', (m: { kind: string; message?: string }, handle: unknown) => {
      if (settled) {
        (handle as { close?: () => void } | undefined)?.close?.();
        return;
      }
      if (m.kind === 'up') {
        clearTimeout(timer);
        timer = arm(timeoutMs, 'the bind helper started but did not bind');
        return;
      }
      if (m.kind === 'udp') udp = handle as UdpSocket;
      else if (m.kind === 'tcp') tcp = handle as Server;
      else if (m.kind === 'error') fail(new MeshError('MESHD_EXEC_FAILED', `cannot bind ${addr}:${port} in ${netns}: ${m.message}`));
      if (udp && tcp && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ udp, tcp });
      }
    });
    // 'disconnect' comes after every message sent before it: only then is a missing socket a failure
    child.on('disconnect', () => {
      if (!(udp && tcp)) fail(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns} failed: ${stderr.trim().slice(0, 300) || 'no sockets received'}`));
    });
    child.on('error', (e) => fail(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns}: ${e.message}`)));
  });
}

/**
 * The native addon's bind (native/meshd_netns.c, in the DNS UDP addon): setns into the namespace, bind
 * both sockets, setns back, all on this thread — no helper process (~90 ms of a task's start here, and
 * seconds where a Node start is slow). Returns [udpFd, tcpFd]; throws an Error naming the step and errno.
 */
export type NativeNetnsBind = (nsPath: string, addr: string, port: number) => [number, number];

/**
 * bindInNetns through the native addon: the same contract (both sockets served by this process, a
 * failure is MESHD_EXEC_FAILED naming the namespace and the cause, nothing left bound on failure).
 */
export async function bindInNetnsNative(bind: NativeNetnsBind, netns: string, addr: string, port: number): Promise<NetnsSockets> {
  checkNetnsName(netns);
  let fds: [number, number];
  try {
    fds = bind(join(NETNS_RUN_DIR, netns), addr, port);
  } catch (e) {
    throw new MeshError('MESHD_EXEC_FAILED', `cannot bind ${addr}:${port} in ${netns}: ${(e as Error).message}`);
  }
  const udp = createSocket({ type: 'udp4' });
  const tcp = createServer();
  let wrapped = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ fd: fds[0] }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    wrapped = 1;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ fd: fds[1] }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    return { udp, tcp };
  } catch (e) {
    // Whatever dgram/net took over they close; an fd they never took is closed here.
    udp.close();
    tcp.close();
    for (const fd of fds.slice(wrapped)) {
      try {
        closeSync(fd);
      } catch {
        // already closed by the socket that failed to take it
      }
    }
    throw new MeshError('MESHD_EXEC_FAILED', `cannot serve the sockets bound in ${netns}: ${(e as Error).message}`);
  }
}
