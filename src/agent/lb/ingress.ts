/**
 * Kernel plumbing of the routing mesh on one node (idempotent; every step checks the kernel
 * first, so a restarted agent repairs what is missing and leaves what is there alone):
 *
 *   host ns ── meshd-ing0 172.31.255.1/30 ═ veth ═ ehost 172.31.255.2/30 ── ingress sandbox
 *   ingress sandbox eth0 (node's unique ingress address /16) ═ veth ═ vi-sbox on br0 of the
 *     overlay sandbox of network `ingress` (VXLAN to the other nodes)
 *   task ns ing0 (task's ingress address /16) ═ veth ═ vi-<task> on the same br0; replies FROM
 *     the ingress address use table 4096: the ingress subnet on ing0, default via this node's
 *     ingress sandbox (policy `local` connections are not masqueraded: the reply to the client's
 *     address must go back through the sandbox and the host that NATed it)
 *
 * The host table DNATs underlay:published → 172.31.255.2; the ingress sandbox's LB picks a task
 * ingress address and masquerades to the node's unique ingress address, so replies come back
 * through this node whichever node the task is on.
 *
 * IPv6 (`v6` true: this node's underlay has IPv6, issue 19 §2): the same picture doubled, every
 * address derived (plan.ts INGRESS_NET6 / HOST_LINK6): fd6d:6573:6864:fffe::1/64 ═ ::2/64 on the
 * host link, the sandbox's and each task's ingress6Of(IPv4 ingress address)/64 on eth0 / ing0,
 * table 4096 for IPv6 replies too, IPv6 forwarding in the host and the sandbox. Addresses are
 * added `nodad` (usable at once; they are unique by construction).
 */
import type { Exec } from '../../adapters/exec.js';
import { MeshError } from '../../core/errors.js';
import { BRIDGE_NAME, sandboxName } from '../../core/overlay/model.js';
import { HOST_LINK, HOST_LINK6, INGRESS_NET, INGRESS_NET6, INGRESS_PREFIX_LEN, INGRESS_REPLY_TABLE, ingress6Of, ingressSboxName, ingressVethName } from './plan.js';

export const SBOX_VETH = 'vi-sbox';
/** The routing mesh's interface in a task namespace (the task's own networks are eth0, eth1, …). */
export const INGRESS_TASK_IF = 'ing0';

export interface IngressAddr {
  ip: string;
  mac: string;
}

async function linkExists(exec: Exec, dev: string, netns?: string): Promise<boolean> {
  const r = await exec.run('ip', [...(netns ? ['-n', netns] : []), 'link', 'show', 'dev', dev]);
  return r.code === 0;
}

async function nsExists(exec: Exec, ns: string): Promise<boolean> {
  const r = await exec.run('ip', ['netns', 'list']);
  return r.stdout.split('\n').some((l) => l.split(' ')[0] === ns);
}

export class IngressPlumber {
  constructor(private readonly exec: Exec, private readonly prefix: string) {}

  get sbox(): string {
    return ingressSboxName(this.prefix);
  }

  get overlayNs(): string {
    return sandboxName(this.prefix, INGRESS_NET.id);
  }

  /** Ingress sandbox, its two veths, addresses, routes and forwarding. Needs the overlay sandbox. */
  async ensureSandbox(addr: IngressAddr, mtu: number, v6 = false): Promise<{ created: string[] }> {
    const created: string[] = [];
    const { exec } = this;
    if (!(await nsExists(exec, this.overlayNs))) throw new MeshError('MESHD_NOT_READY', `overlay sandbox ${this.overlayNs} of network ingress is not there yet`);
    if (!(await nsExists(exec, this.sbox))) {
      await exec.check('ip', ['netns', 'add', this.sbox]);
      created.push('netns');
    }
    if (!(await linkExists(exec, SBOX_VETH, this.overlayNs))) {
      await exec.run('ip', ['-n', this.sbox, 'link', 'del', 'eth0']);
      await exec.check('ip', ['-n', this.overlayNs, '-batch', '-'], {
        input: `link add ${SBOX_VETH} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${this.sbox}\nlink set ${SBOX_VETH} master ${BRIDGE_NAME} up\n`,
      });
      created.push('overlay-veth');
    }
    if (!(await linkExists(exec, HOST_LINK.hostIf))) {
      await exec.run('ip', ['-n', this.sbox, 'link', 'del', HOST_LINK.sboxIf]);
      await exec.check('ip', ['link', 'add', HOST_LINK.hostIf, 'type', 'veth', 'peer', 'name', HOST_LINK.sboxIf, 'netns', this.sbox]);
      created.push('host-veth');
    }
    await exec.check('ip', ['-batch', '-'], { input: `addr replace ${HOST_LINK.hostIp}/${HOST_LINK.prefix} dev ${HOST_LINK.hostIf}\nlink set ${HOST_LINK.hostIf} up\n` });
    await exec.check('ip', ['-n', this.sbox, '-batch', '-'], {
      input: [
        'link set lo up',
        `link set eth0 address ${addr.mac} up`,
        `addr replace ${addr.ip}/${INGRESS_PREFIX_LEN} dev eth0`,
        `addr replace ${HOST_LINK.sboxIp}/${HOST_LINK.prefix} dev ${HOST_LINK.sboxIf}`,
        `link set ${HOST_LINK.sboxIf} up`,
        `route replace default via ${HOST_LINK.hostIp} dev ${HOST_LINK.sboxIf}`,
        '',
      ].join('\n'),
    });
    // Drop a previous unique address if the manager changed it.
    const cur = await exec.run('ip', ['-n', this.sbox, '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
    const infos = (JSON.parse(cur.stdout || '[]') as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>)[0]?.addr_info ?? [];
    const stale = infos.filter((a) => a.local !== addr.ip).map((a) => `addr del ${a.local}/${a.prefixlen} dev eth0`);
    if (stale.length) await exec.check('ip', ['-n', this.sbox, '-batch', '-'], { input: stale.join('\n') + '\n' });
    await exec.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    await exec.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { netns: this.sbox });
    if (v6) await this.ensureSandbox6(addr);
    return { created };
  }

  /** The sandbox's IPv6 half (see the file comment); drops a stale derived address. */
  private async ensureSandbox6(addr: IngressAddr): Promise<void> {
    const { exec } = this;
    const ip6 = ingress6Of(addr.ip);
    await exec.check('sysctl', ['-q', '-w', `net.ipv6.conf.${HOST_LINK.hostIf}.disable_ipv6=0`, 'net.ipv6.conf.all.forwarding=1']);
    await exec.check('sysctl', ['-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=0', `net.ipv6.conf.${HOST_LINK.sboxIf}.disable_ipv6=0`, 'net.ipv6.conf.all.forwarding=1'], { netns: this.sbox });
    await exec.check('ip', ['-batch', '-'], { input: `addr replace ${HOST_LINK6.hostIp}/${HOST_LINK6.prefix} dev ${HOST_LINK.hostIf} nodad\n` });
    await exec.check('ip', ['-n', this.sbox, '-batch', '-'], {
      input: [
        `addr replace ${ip6}/${INGRESS_NET6.prefix} dev eth0 nodad`,
        `addr replace ${HOST_LINK6.sboxIp}/${HOST_LINK6.prefix} dev ${HOST_LINK.sboxIf} nodad`,
        `route replace ::/0 via ${HOST_LINK6.hostIp} dev ${HOST_LINK.sboxIf}`,
        '',
      ].join('\n'),
    });
    const cur = await exec.run('ip', ['-n', this.sbox, '-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    // `ip -j` lists addresses its filter skipped as `{}`: only entries with an address count
    const infos = (JSON.parse(cur.stdout || '[]') as Array<{ addr_info?: Array<{ local?: string; prefixlen?: number }> }>)[0]?.addr_info ?? [];
    const stale = infos.filter((a) => a.local !== undefined && a.local !== ip6).map((a) => `addr del ${a.local}/${a.prefixlen} dev eth0`);
    if (stale.length) await exec.check('ip', ['-n', this.sbox, '-batch', '-'], { input: stale.join('\n') + '\n' });
  }

  /**
   * Attaches a task namespace to `ingress` as `ing0` (skipped when it is there; not `ethN`: those
   * are the task's own networks, one per attachment, plumbed by the runtime) and (re)sets the
   * reply routing for its ingress address via `gatewayIp` (this node's ingress sandbox).
   * `v6`: also its derived IPv6 ingress address and its reply routing (see the file comment).
   */
  async ensureTask(taskId: string, taskNs: string, addr: IngressAddr, mtu: number, gatewayIp: string, v6 = false): Promise<boolean> {
    const { exec } = this;
    let created = false;
    if (!(await linkExists(exec, INGRESS_TASK_IF, taskNs))) {
      const veth = ingressVethName(taskId);
      await exec.run('ip', ['-n', this.overlayNs, 'link', 'del', veth]);
      await exec.check('ip', ['-n', this.overlayNs, '-batch', '-'], {
        // fdb_flush: a reused ingress address's MAC may be learned behind the VXLAN port (see runtime/attach.ts).
        input: `link add ${veth} mtu ${mtu} type veth peer name ${INGRESS_TASK_IF} mtu ${mtu} netns ${taskNs}\nlink set ${veth} master ${BRIDGE_NAME} up\nlink set ${BRIDGE_NAME} type bridge fdb_flush\n`,
      });
      await exec.check('ip', ['-n', taskNs, '-batch', '-'], { input: `link set ${INGRESS_TASK_IF} address ${addr.mac} up\naddr add ${addr.ip}/${INGRESS_PREFIX_LEN} dev ${INGRESS_TASK_IF}\n` });
      created = true;
    }
    const rules = await exec.run('ip', ['-n', taskNs, 'rule', 'show', 'from', addr.ip, 'lookup', String(INGRESS_REPLY_TABLE)]);
    const t = INGRESS_REPLY_TABLE;
    await exec.check('ip', ['-n', taskNs, '-batch', '-'], {
      input: [
        ...(rules.stdout.trim() ? [] : [`rule add from ${addr.ip} lookup ${t} priority ${t}`]),
        `route replace ${INGRESS_NET.subnet} dev ${INGRESS_TASK_IF} table ${t}`,
        `route replace default via ${gatewayIp} dev ${INGRESS_TASK_IF} table ${t}`,
        '',
      ].join('\n'),
    });
    if (v6) await this.ensureTask6(taskNs, ingress6Of(addr.ip), ingress6Of(gatewayIp));
    return created;
  }

  /** A task's IPv6 ingress address and its reply routing (docker sandboxes may have IPv6 off: turned on for ing0). */
  private async ensureTask6(taskNs: string, ip6: string, gateway6: string): Promise<void> {
    const { exec } = this;
    const t = INGRESS_REPLY_TABLE;
    await exec.check('sysctl', ['-q', '-w', `net.ipv6.conf.${INGRESS_TASK_IF}.disable_ipv6=0`], { netns: taskNs });
    const rules = await exec.run('ip', ['-n', taskNs, '-6', 'rule', 'show', 'from', ip6, 'lookup', String(t)]);
    // `ip rule` takes IPv4 unless told (-6), and a batch line cannot say it: a command of its own
    if (!rules.stdout.trim()) await exec.check('ip', ['-n', taskNs, '-6', 'rule', 'add', 'from', ip6, 'lookup', String(t), 'priority', String(t)]);
    await exec.check('ip', ['-n', taskNs, '-batch', '-'], {
      input: [
        `addr replace ${ip6}/${INGRESS_NET6.prefix} dev ${INGRESS_TASK_IF} nodad`,
        `route replace ${INGRESS_NET6.subnet} dev ${INGRESS_TASK_IF} table ${t}`,
        `route replace ::/0 via ${gateway6} dev ${INGRESS_TASK_IF} table ${t}`,
        '',
      ].join('\n'),
    });
  }

  /** Removes a task's ingress veth (absent is fine: it goes with the task namespace). */
  async removeTask(taskId: string): Promise<void> {
    await this.exec.run('ip', ['-n', this.overlayNs, 'link', 'del', ingressVethName(taskId)]);
  }

  async sandboxExists(): Promise<boolean> {
    return nsExists(this.exec, this.sbox);
  }
}
