/**
 * Probes for the gossip-key lab (gossip-keys-lab.test.ts), all sending from inside lab namespaces:
 * a steady request loop (load-main.js) that reports what failed, a crafted VXLAN frame sender, and
 * readers of what a node's kernel did with such frames (the VXLAN guard's drop counter, the overlay
 * bridge's learnt MACs). Kept apart so the test file reads as the cases.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';
import { NftVxlanGuard } from '../../../src/adapters/firewall/vxlan-guard.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface LoadCounts { ok: number; failed: number }
export interface LoadFinal extends LoadCounts { final: true; failures: string[]; byTask: Record<string, number> }

/** A running request loop: `counts()` is its last report (once a second), `stop()` its final one. */
export interface Load {
  readonly what: string;
  counts(): LoadCounts;
  stop(): Promise<LoadFinal>;
  kill(): void;
}

/** Starts load-main.js inside `netns` against `urls` (round-robin, one request at a time). */
export function startLoad(what: string, netns: string, urls: string[]): Load {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns, process.execPath, join(HERE, 'load-main.js'), ...urls], { stdio: ['ignore', 'pipe', 'pipe'] });
  let last: LoadCounts = { ok: 0, failed: 0 };
  let final: LoadFinal | undefined;
  let err = '';
  let buf = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const j = JSON.parse(line) as LoadCounts | LoadFinal;
      if ('final' in j) final = j;
      else last = j;
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    what,
    counts: () => last,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      if (!final) throw new Error(`${what}: the request loop ended without its summary; stderr: ${err.slice(-600)}`);
      return final;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/**
 * Sends `count` VXLAN frames (VNI `vni`) from `netns` to `dst`:4789: broadcast Ethernet frames with
 * source MAC `mac` (an ARP type with a zeroed body, which nothing answers), so a frame that got through
 * the guard leaves `mac` learnt on the overlay bridge.
 */
export async function sendVxlan(netns: string, dst: string, vni: number, mac: string, count: number): Promise<void> {
  const js = `const d=require('dgram').createSocket('udp4');const v=Buffer.from([8,0,0,0,${vni >> 16},${(vni >> 8) & 255},${vni & 255},0]);` +
    `const m=Buffer.from('${mac.replace(/:/g, '')}','hex');const e=Buffer.concat([Buffer.alloc(6,255),m,Buffer.from([8,6]),Buffer.alloc(46)]);` +
    `let n=0;const s=()=>d.send(Buffer.concat([v,e]),4789,'${dst}',()=>{if(++n<${count})s();else d.close();});s();`;
  await realExec.check(process.execPath, ['-e', js], { netns });
}

/** The VXLAN guard of a node (its host namespace): allow-list and drop counter, read from nft. */
export const guardOf = (hostNetns: string): NftVxlanGuard => new NftVxlanGuard(realExec, hostNetns);

/** Whether `mac` is in the FDB of the bridge br0 in an overlay sandbox (learnt from a frame that reached it). */
export async function bridgeLearnt(sandbox: string, mac: string): Promise<boolean> {
  return (await realExec.check('bridge', ['-n', sandbox, 'fdb', 'show', 'br', 'br0'])).includes(mac);
}

/** The VNI of the (one) VXLAN device in an overlay sandbox. */
export async function sandboxVni(sandbox: string): Promise<number> {
  const links = JSON.parse(await realExec.check('ip', ['-j', '-d', '-n', sandbox, 'link', 'show', 'type', 'vxlan'])) as Array<{ linkinfo?: { info_data?: { id?: number } } }>;
  const vni = links[0]?.linkinfo?.info_data?.id;
  if (vni === undefined) throw new Error(`no VXLAN device in ${sandbox}: ${JSON.stringify(links)}`);
  return vni;
}

/** The named namespace of a netns-runtime task (`…t-<first 12 of its id>`). */
export async function taskNetns(taskId: string): Promise<string> {
  const suffix = `t-${taskId.slice(0, 12)}`;
  const ns = (await realExec.check('ip', ['netns', 'list'])).split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').find((n) => n.endsWith(suffix));
  if (!ns) throw new Error(`no namespace for task ${taskId} (${suffix})`);
  return ns;
}
