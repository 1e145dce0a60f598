/**
 * Sockets bound inside another network namespace, served by this process: a short-lived
 * child (netns-bind-child.js) binds them in the namespace and passes them over IPC. Used to
 * answer DNS at 127.0.0.11:53 inside every task namespace from one server per node.
 */
import { spawn } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../core/errors.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'netns-bind-child.js');

export interface NetnsSockets {
  udp: UdpSocket;
  tcp: Server;
}

export function bindInNetns(netns: string, addr: string, port: number, timeoutMs = 10_000): Promise<NetnsSockets> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, CHILD, addr, String(port)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
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
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns} timed out`));
    }, timeoutMs);
    child.on('message', (m: { kind: string; message?: string }, handle: unknown) => {
      if (settled) {
        (handle as { close?: () => void } | undefined)?.close?.();
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
