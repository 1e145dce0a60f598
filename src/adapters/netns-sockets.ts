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
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns} timed out`));
    }, timeoutMs);
    child.on('message', (m: { kind: string; message?: string }, handle: unknown) => {
      if (m.kind === 'udp') udp = handle as UdpSocket;
      else if (m.kind === 'tcp') tcp = handle as Server;
      else if (m.kind === 'error') {
        clearTimeout(timer);
        reject(new MeshError('MESHD_EXEC_FAILED', `cannot bind ${addr}:${port} in ${netns}: ${m.message}`));
      }
      if (udp && tcp) {
        clearTimeout(timer);
        resolve({ udp, tcp });
      }
    });
    child.on('exit', (code) => {
      if (!(udp && tcp)) {
        clearTimeout(timer);
        reject(new MeshError('MESHD_EXEC_FAILED', `binding ${addr}:${port} in ${netns} failed (exit ${code}): ${stderr.trim().slice(0, 300)}`));
      }
    });
  });
}
