/**
 * A small namespace lab for the overlay tests: N "host" namespaces (the nodes, with an
 * underlay address on eth0) joined by a bridge in a "switch" namespace, plus optional
 * extra hosts (e.g. a non-member "rogue"). The root namespace gets nothing.
 * teardown() kills every process inside and deletes every namespace with the prefix.
 */
import { realExec } from '../../../src/adapters/exec.js';

export interface LabHost {
  name: string;
  ns: string;
  ip: string;
}

export interface Lab {
  prefix: string;
  switchNs: string;
  hosts: LabHost[];
  extra: LabHost[];
  teardown(): Promise<void>;
}

export async function listNetns(): Promise<string[]> {
  const out = await realExec.check('ip', ['netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
}

/** Kills processes in and deletes every namespace starting with `prefix`. */
export async function cleanupPrefix(prefix: string): Promise<void> {
  const names = (await listNetns()).filter((n) => n.startsWith(prefix));
  for (const ns of names) {
    const r = await realExec.run('ip', ['netns', 'pids', ns]);
    for (const p of r.stdout.split(/\s+/).filter((x) => /^\d+$/.test(x))) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const ns of names) await realExec.run('ip', ['netns', 'del', ns]);
}

/**
 * Builds the lab. `net` is the underlay /24's third octet (192.168.<net>.0/24);
 * hosts get .1 .. .N, extras .101 ...
 */
export async function labUp(prefix: string, hosts: number, extras: string[] = [], net = 213): Promise<Lab> {
  await cleanupPrefix(prefix);
  const switchNs = `${prefix}sw`;
  const lab: Lab = { prefix, switchNs, hosts: [], extra: [], teardown: () => cleanupPrefix(prefix) };
  try {
    await realExec.check('ip', ['netns', 'add', switchNs]);
    await realExec.check('ip', ['-n', switchNs, '-batch', '-'], { input: 'link set lo up\nlink add sw0 type bridge\nlink set sw0 up\n' });
    const mk = async (name: string, ip: string, idx: number): Promise<LabHost> => {
      const ns = `${prefix}${name}`;
      await realExec.check('ip', ['netns', 'add', ns]);
      await realExec.check('ip', ['-n', switchNs, '-batch', '-'], {
        input: `link add p${idx} type veth peer name eth0 netns ${ns}\nlink set p${idx} master sw0 up\n`,
      });
      await realExec.check('ip', ['-n', ns, '-batch', '-'], { input: `link set lo up\naddr add ${ip}/24 dev eth0\nlink set eth0 up\n` });
      return { name, ns, ip };
    };
    for (let i = 1; i <= hosts; i++) lab.hosts.push(await mk(`h${i}`, `192.168.${net}.${i}`, i));
    for (let j = 0; j < extras.length; j++) lab.extra.push(await mk(extras[j] ?? `x${j}`, `192.168.${net}.${101 + j}`, 100 + j));
    return lab;
  } catch (e) {
    await lab.teardown();
    throw e;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retries `fn` until it returns true or `ms` passes. */
export async function eventually(fn: () => Promise<boolean>, ms = 5000, stepMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}
