/**
 * Automatic overlay MTU (issue 19 §5) end to end on a 3-node lab (`mmtu`, netns runtime), through
 * the real netctl and meshd:
 * - tasks start on clean 1500-byte paths: overlay MTU 1450;
 * - n3's underlay link (its veth and the switch port) drops to 1400 — the switch then drops bigger
 *   frames to n3 silently, as a cloud fabric does; after a probe round (`netctl debug mtu --probe`,
 *   what an operator runs after an underlay change; rounds also run on joins and periodically) EVERY
 *   node's overlay MTU is 1350, the smallest path minus 50, including the running tasks' eth0;
 * - a 1,350-byte DF ping (`ping -M do -s 1322`) from n1's task to n3's task crosses; one byte more
 *   is refused at once by the sender's own stack ("message too long"), never black-holed;
 * - the network created with `--mtu 1200` keeps 1200 on every node (the configured MTU wins);
 * - `network inspect` and `debug sandbox` show the MTU and why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, ok } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { switchNs } from '../../../src/lab/plan.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'mmtu';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-mmtu-'));
let lab: LabState;
const { on, m, waitRunning, netnsOf: taskNs } = labCli(LAB);
const nodeNs = (node: string) => `mlab-${LAB}-${node}`;
/** MTU of a link in a namespace (`ip -j link show`). */
function mtuIn(ns: string, dev: string): number {
  const r = inNs(ns, ['ip', '-j', 'link', 'show', dev], 5000);
  if (r.code !== 0) return -1;
  return (JSON.parse(r.stdout) as Array<{ mtu: number }>)[0]?.mtu ?? -1;
}
/** What n1..n3 and their tasks hold, printed when a wait or a ping fails. */
async function diag(tasks: readonly TaskJ[]): Promise<string> {
  const out: string[] = [];
  for (const n of ['n1', 'n2', 'n3']) out.push(`--- ${n}: ${(await on(n, 'debug', 'mtu')).stdout.trim()}`, (await on(n, 'debug', 'sandbox')).stdout.trim());
  for (const t of tasks) out.push(`${t.name}@${t.node}: ${inNs(taskNs(t), ['ip', '-br', 'link'], 5000).stdout.trim()}`);
  return out.join('\n');
}

before(async () => {
  lab = await createLab({ name: LAB, nodes: 3 }); // automatic MTU probes are on by default (overlay.mtuProbe)
  await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, waitReady: true, timeoutMs: 120_000 });
});
after(async () => {
  if (process.env.MMTU_KEEP_LAB) return;
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('automatic overlay MTU (lab, netns runtime)', { timeout: 300_000 }, () => {
  test('a 1400-byte underlay link on n3 gives every node overlay MTU 1350; 1350-byte DF pings cross, bigger ones fail locally; --mtu wins', async () => {
    ok(await m('network', 'create', '--subnet', '10.66.0.0/24', 'auto'), 'create auto');
    ok(await m('network', 'create', '--subnet', '10.67.0.0/24', '--mtu', '1200', 'fixed'), 'create fixed');
    ok(await m('service', 'create', '--name', 'pinger', '--mode', 'global', '--network', 'auto', '--network', 'fixed', '--timeout', '90s', 'whoami'), 'create pinger');
    const tasks = await waitRunning('pinger', 3, 3, 60_000); // a running pinger task on each node
    const byNode = (n: string) => tasks.find((t) => t.node === n)!;
    const [t1, t3] = [byNode('n1'), byNode('n3')];
    assert.equal(mtuIn(taskNs(t1), 'eth0'), 1450, 'clean 1500-byte paths: 1450');
    assert.equal(mtuIn(taskNs(t1), 'eth1'), 1200, '--mtu 1200');

    // n3's underlay link shrinks on both ends; the switch now drops bigger frames to n3 without a word.
    execFileSync('ip', ['-n', nodeNs('n3'), 'link', 'set', 'eth0', 'mtu', '1400']);
    execFileSync('ip', ['-n', switchNs(LAB), 'link', 'set', 'n3', 'mtu', '1400']);
    for (const n of ['n1', 'n2', 'n3']) {
      const r = JSON.parse(ok(await on(n, 'debug', 'mtu', '--probe', '--format', 'json'), `probe on ${n}`).stdout) as { mtu: { overlay: number; underlay: number; paths: Record<string, number | null> } };
      assert.equal(r.mtu.overlay, 1350, `${n}: ${JSON.stringify(r.mtu)}`);
    }
    const n3ip = lab.nodes.find((n) => n.name === 'n3')!.underlay;
    const probed = JSON.parse(ok(await m('debug', 'mtu', '--format', 'json'), 'debug mtu').stdout) as { mtu: { limitedBy: string; peer: string; paths: Record<string, number> } };
    assert.equal(probed.mtu.limitedBy, 'path');
    assert.equal(probed.mtu.peer, n3ip);
    assert.equal(probed.mtu.paths[n3ip], 1400, `n1's path to n3: ${JSON.stringify(probed.mtu.paths)}`);

    // Running tasks follow: eth0 at 1350 everywhere, the --mtu network stays 1200.
    await waitFor('every task eth0 at 1350, eth1 at 1200', () => {
      const got = tasks.map((t) => `${t.node}:${mtuIn(taskNs(t), 'eth0')}/${mtuIn(taskNs(t), 'eth1')}`);
      return got.every((g) => g.endsWith(':1350/1200')) && got;
    }, 15_000, 200, () => diag(tasks));
    const sandbox = ok(await m('debug', 'sandbox'), 'debug sandbox').stdout;
    assert.match(sandbox, /overlay MTU 1350 \(automatic.*smallest path: [\d.]+ carries 1400/, sandbox);
    await waitFor('no sandbox drift on n1 (bridge, VXLAN and ports of every sandbox at 1350, fixed at 1200)', async () => {
      const st = JSON.parse(ok(await m('debug', 'sandbox', '--format', 'json'), 'sandbox json').stdout) as { sandboxes: Array<{ network: string; state: string; mtu: number }> };
      // auto, fixed and the ingress network's sandbox (the ingress overlay follows the automatic MTU too).
      const mtus = [...new Set(st.sandboxes.map((s) => s.mtu))].sort().join(',');
      return st.sandboxes.length >= 2 && st.sandboxes.every((s) => s.state === 'ok') && mtus === '1200,1350' && st;
    }, 15_000, 200, () => diag(tasks));
    assert.equal(ok(await m('network', 'inspect', 'auto', '--format', '{{.mtu}} {{.mtuSource}}'), 'inspect auto').stdout.trim(), '1350 auto');
    assert.equal(ok(await m('network', 'inspect', 'fixed', '--format', '{{.mtu}} {{.mtuSource}}'), 'inspect fixed').stdout.trim(), '1200 configured');

    // 1,350 bytes total with DF crosses n1 → n3 (through the 1400-byte link); one more byte is refused
    // by n1's task itself, at once. Same on the clean path n1 → n2 (the MTU is per network, not per peer).
    const to3 = t3.addresses.auto!;
    const fits = inNs(taskNs(t1), ['ping', '-n', '-M', 'do', '-c', '3', '-i', '0.2', '-W', '2', '-s', '1322', to3], 15_000);
    assert.equal(fits.code, 0, `1350-byte DF ping ${t1.name} → ${to3}: ${fits.stdout}${fits.stderr}\n${await diag(tasks)}`);
    const t0 = Date.now();
    const big = inNs(taskNs(t1), ['ping', '-n', '-M', 'do', '-c', '1', '-W', '2', '-s', '1323', to3], 15_000);
    assert.notEqual(big.code, 0, '1351 bytes must not pass');
    assert.match(`${big.stdout}${big.stderr}`, /message too long/, `refused locally: ${big.stdout}${big.stderr}`);
    assert.ok(Date.now() - t0 < 1500, `refused at once, not after a timeout (${Date.now() - t0} ms)`);
    const fixedTo3 = inNs(taskNs(t1), ['ping', '-n', '-M', 'do', '-c', '1', '-W', '2', '-s', '1172', t3.addresses.fixed!], 15_000);
    assert.equal(fixedTo3.code, 0, `1200-byte DF ping on fixed: ${fixedTo3.stdout}${fixedTo3.stderr}`);
    const fixedBig = inNs(taskNs(t1), ['ping', '-n', '-M', 'do', '-c', '1', '-W', '2', '-s', '1173', t3.addresses.fixed!], 15_000);
    assert.match(`${fixedBig.stdout}${fixedBig.stderr}`, /message too long/, 'the configured 1200 is what limits fixed');
    ok(await m('service', 'rm', 'pinger'), 'rm pinger');
  });
});
