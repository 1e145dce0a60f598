/**
 * Kernel plumbing of host publish mode (`--publish mode=host`) for one local task — Docker's
 * docker_gwbridge path, without the bridge and without the ingress network:
 *
 *   node ns ── vh-<task> 169.254.255.1/32 ═ veth ═ mhost0 ── task ns
 *   node ns: route <task address>/32 dev vh-<task>   (the node's LB DNATs published → task:target)
 *   task ns: connections that come in over mhost0 get ct mark 0x4d48; their replies carry that mark
 *            (output route hook) and `ip rule fwmark 0x4d48 lookup 4097` sends them back via
 *            169.254.255.1 on mhost0 — to the client's REAL address (no SNAT), through the node
 *            that NATed them, whatever the task's other routes say.
 *
 * Idempotent (every step checks or replaces); the veth pair and the route go with the task's
 * namespace. No addresses to allocate: the task keeps its overlay address, the link-local /32 is
 * the same on every host-side veth.
 */
import type { Exec } from '../../adapters/exec.js';
import { HOST_MODE, hostVethName } from './plan.js';

const H = HOST_MODE;
const MARK = `0x${H.ctMark.toString(16)}`;

/** The task namespace's small nft table (replaced whole, atomically). */
export function renderHostModeTaskTable(): string {
  const t = `ip ${H.nftTable}`;
  return [
    `table ${t}`,
    `delete table ${t}`,
    `table ${t} {`,
    `\tchain pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n\t\tiifname "${H.taskIf}" ct state new ct mark set ${MARK}\n\t}`,
    `\tchain out {\n\t\ttype route hook output priority -150; policy accept;\n\t\tct mark ${MARK} meta mark set ${MARK}\n\t}`,
    '}',
    '',
  ].join('\n');
}

export class HostModePlumber {
  constructor(private readonly exec: Exec) {}

  /** Plumbs one task (its namespace `taskNs`, its address `ip`); true when the veth was created. */
  async ensureTask(taskId: string, taskNs: string, ip: string): Promise<boolean> {
    const { exec } = this;
    const veth = hostVethName(taskId);
    let created = false;
    if ((await exec.run('ip', ['-n', taskNs, 'link', 'show', 'dev', H.taskIf])).code !== 0) {
      await exec.run('ip', ['link', 'del', veth]);
      await exec.check('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', H.taskIf, 'netns', taskNs]);
      created = true;
    }
    await exec.check('ip', ['-batch', '-'], { input: `addr replace ${H.hostIp}/32 dev ${veth}\nlink set ${veth} up\nroute replace ${ip}/32 dev ${veth}\n` });
    await exec.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const rules = await exec.run('ip', ['-n', taskNs, 'rule', 'show', 'fwmark', MARK, 'lookup', String(H.replyTable)]);
    await exec.check('ip', ['-n', taskNs, '-batch', '-'], {
      input: [
        `link set ${H.taskIf} up`,
        ...(rules.stdout.trim() ? [] : [`rule add fwmark ${MARK} lookup ${H.replyTable} priority ${H.replyTable}`]),
        `route replace default via ${H.hostIp} dev ${H.taskIf} onlink table ${H.replyTable}`,
        '',
      ].join('\n'),
    });
    // the client's address is not routed via mhost0 in the main table: no strict reverse-path check there
    await exec.check('sysctl', ['-q', '-w', `net.ipv4.conf.${H.taskIf}.rp_filter=0`, 'net.ipv4.conf.all.rp_filter=0'], { netns: taskNs });
    await exec.check('nft', ['-f', '-'], { input: renderHostModeTaskTable(), netns: taskNs });
    return created;
  }

  /** Removes a task's host veth (absent is fine: it goes with the task namespace). */
  async removeTask(taskId: string): Promise<void> {
    await this.exec.run('ip', ['link', 'del', hostVethName(taskId)]);
  }
}
