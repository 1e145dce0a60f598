/**
 * Automatic overlay MTU (issue 19 §5): the pure policy (table tests: lower at once, raise only
 * after N agreeing rounds, flapping probes never flap, unknown paths are not small ones, departed
 * peers forgotten, bad input refused), the probe script's output parser, the diff that makes
 * bridge ports follow the bridge MTU, and the task re-tune script.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MtuPolicy, overlayMtuOf, smallestPath, type MtuInput } from '../../../src/core/overlay/mtu.js';
import { PROBE_SCRIPT, parseProbeOutput, probePathMtu } from '../../../src/adapters/netlink/pmtu.js';
import { diff } from '../../../src/core/overlay/diff.js';
import { desiredNode } from '../../../src/core/overlay/desired.js';
import type { OverlayNetwork } from '../../../src/core/overlay/model.js';
import { sandboxRows } from '../../../src/core/overlay/debug.js';
import { retuneScript } from '../../../src/agent/worker/mtu.js';
import type { Assignment } from '../../../src/core/assignments.js';
import type { Exec } from '../../../src/adapters/exec.js';

const round = (results: Record<string, number | null>): MtuInput => ({ type: 'round', results });
const paths = (results: Record<string, number | null>): MtuInput => ({ type: 'paths', results });

describe('MtuPolicy (table)', () => {
  const cases: Array<{ name: string; link: number; raiseAfter?: number; steps: MtuInput[]; underlay: number[]; changes: number }> = [
    { name: 'clean paths: stays at the link', link: 1500, steps: [round({ a: 1500, b: 1500 })], underlay: [1500], changes: 0 },
    { name: 'one small path lowers at once', link: 1500, steps: [round({ a: 1500, b: 1400 })], underlay: [1400], changes: 1 },
    { name: 'the smallest of several wins', link: 1500, steps: [round({ a: 1450, b: 1400, c: 1480 })], underlay: [1400], changes: 1 },
    { name: 'a path larger than the link: the link wins', link: 1400, steps: [round({ a: 9000 })], underlay: [1400], changes: 0 },
    {
      name: 'raise only after 2 agreeing rounds', link: 1500,
      steps: [round({ a: 1400 }), round({ a: 1500 }), round({ a: 1500 })], underlay: [1400, 1400, 1500], changes: 2,
    },
    {
      name: 'flapping probe (1400/1500/1400/1500…) never flaps the MTU', link: 1500,
      steps: [round({ a: 1400 }), round({ a: 1500 }), round({ a: 1400 }), round({ a: 1500 }), round({ a: 1400 }), round({ a: 1500 })],
      underlay: [1400, 1400, 1400, 1400, 1400, 1400], changes: 1,
    },
    {
      name: 'a raise goes to the smallest value the streak allowed', link: 1500,
      steps: [round({ a: 1300 }), round({ a: 1500 }), round({ a: 1450 })], underlay: [1300, 1300, 1450], changes: 2,
    },
    {
      name: 'null (probe learned nothing) keeps the last known path', link: 1500,
      steps: [round({ a: 1400 }), round({ a: null }), round({ a: null })], underlay: [1400, 1400, 1400], changes: 1,
    },
    { name: 'a peer never measured (null) is not a small path', link: 1500, steps: [round({ a: null })], underlay: [1500], changes: 0 },
    {
      name: 'the limiting peer left: raise after 2 rounds without it', link: 1500,
      steps: [round({ a: 1400, b: 1500 }), round({ b: 1500 }), round({ b: 1500 })], underlay: [1400, 1400, 1500], changes: 2,
    },
    { name: 'raiseAfterRounds 1: raises on the next round', link: 1500, raiseAfter: 1, steps: [round({ a: 1400 }), round({ a: 1500 })], underlay: [1400, 1500], changes: 2 },
    { name: 'the link itself drops: lowered at once', link: 1500, steps: [{ type: 'link', mtu: 1400 }], underlay: [1400], changes: 1 },
    {
      name: 'a link raise alone does not raise; the rounds do', link: 1400,
      steps: [{ type: 'link', mtu: 1500 }, round({ a: 1500 }), round({ a: 1500 })], underlay: [1400, 1400, 1500], changes: 1,
    },
    // Partial probes (`paths`: a member just joined): lower at once, forget nobody, never raise.
    { name: 'a joined peer\'s small path (partial probe) lowers at once', link: 1500, steps: [round({ a: 1500 }), paths({ b: 1400 })], underlay: [1500, 1400], changes: 1 },
    {
      name: 'a partial probe forgets nobody: the limiting peer stays', link: 1500,
      steps: [round({ a: 1400 }), paths({ b: 1500 }), paths({ c: 1500 })], underlay: [1400, 1400, 1400], changes: 1,
    },
    {
      name: 'partial probes never raise (nor count towards a raise); full rounds do', link: 1500,
      steps: [round({ a: 1400 }), paths({ a: 1500 }), paths({ a: 1500 }), round({ a: 1500 }), round({ a: 1500 })], underlay: [1400, 1400, 1400, 1400, 1500], changes: 2,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const p = new MtuPolicy(c.link, { raiseAfterRounds: c.raiseAfter ?? 2 });
      const seen = c.steps.map((s, i) => {
        p.handle(s, i * 1000);
        return p.underlay;
      });
      assert.deepEqual(seen, c.underlay);
      assert.equal(p.drain().length, c.changes);
      assert.equal(p.overlay, p.underlay - 50);
    });
  }

  test('a change names what limits it, with overlay values', () => {
    const p = new MtuPolicy(1500);
    p.handle(round({ '10.0.0.2': 1500, '10.0.0.3': 1400 }), 7);
    assert.deepEqual(p.drain(), [{ from: 1500, to: 1400, overlayFrom: 1450, overlayTo: 1350, limitedBy: 'path', peer: '10.0.0.3', at: 7 }]);
    assert.deepEqual(p.drain(), [], 'drained once');
    const v = p.view();
    assert.deepEqual({ link: v.link, underlay: v.underlay, overlay: v.overlay, limitedBy: v.limitedBy, peer: v.peer, paths: v.paths },
      { link: 1500, underlay: 1400, overlay: 1350, limitedBy: 'path', peer: '10.0.0.3', paths: { '10.0.0.2': 1500, '10.0.0.3': 1400 } });
  });

  test('bad input is refused with a stable code', () => {
    assert.throws(() => new MtuPolicy(100), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => new MtuPolicy(1500, { raiseAfterRounds: 0 }), { code: 'MESHD_BAD_ARGUMENT' });
    const p = new MtuPolicy(1500);
    assert.throws(() => p.handle(round({ a: 1.5 }), 0), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => p.handle(round({ a: 70_000 }), 0), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => p.handle({ type: 'nope' } as unknown as MtuInput, 0), { code: 'MESHD_BAD_ARGUMENT' });
    // All or nothing: a bad value anywhere in a probe changes nothing, not even the valid peers before it.
    p.handle(round({ a: 1500 }), 0);
    assert.throws(() => p.handle(paths({ b: 1400, c: 100 }), 0), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => p.handle(round({ b: 1400, c: 100 }), 0), { code: 'MESHD_BAD_ARGUMENT' });
    assert.deepEqual(p.view().paths, { a: 1500 });
    assert.equal(p.underlay, 1500);
  });

  test('--mtu wins over the automatic value; smallestPath breaks ties towards the link', () => {
    assert.equal(overlayMtuOf(1400, 1200), 1200);
    assert.equal(overlayMtuOf(1400, 9000), 9000);
    assert.equal(overlayMtuOf(1400), 1350);
    assert.deepEqual(smallestPath(1400, { a: 1400, b: null }), { mtu: 1400, limitedBy: 'link', peer: null });
    assert.deepEqual(smallestPath(1500, { b: 1400, a: 1400 }), { mtu: 1400, limitedBy: 'path', peer: 'a' });
  });
});

describe('path-MTU probe (adapter, pure parts)', () => {
  test('output parser: sizes, "-" = nothing passed; unknown peers and missing results refused', () => {
    assert.deepEqual(parseProbeOutput('10.0.0.3 1400\n10.0.0.2 -\n', ['10.0.0.2', '10.0.0.3']), { '10.0.0.2': null, '10.0.0.3': 1400 });
    assert.throws(() => parseProbeOutput('10.0.0.9 1400\n', ['10.0.0.2']), { code: 'MESHD_INTERNAL' });
    assert.throws(() => parseProbeOutput('', ['10.0.0.2']), { code: 'MESHD_INTERNAL', message: /no result for 10\.0\.0\.2/ });
  });

  test('one process per round with peers as arguments; DF pings of the IP size minus 28 (48 to an IPv6 peer); bad input refused before spawning', async () => {
    const calls: Array<{ cmd: string; args: readonly string[] }> = [];
    const exec: Exec = {
      run: async (cmd, args) => {
        calls.push({ cmd, args });
        return { code: 0, stdout: args.slice(9).map((p) => `${p} 1500`).join('\n'), stderr: '' };
      },
      check: async () => '',
    };
    assert.deepEqual(await probePathMtu(exec, ['10.0.0.2', '10.0.0.3'], { max: 1500, min: 576, timeoutS: 1 }), { '10.0.0.2': 1500, '10.0.0.3': 1500 });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.cmd, 'nice', 'niced: the probe yields the CPU to the agents');
    assert.deepEqual(calls[0]!.args.slice(0, 5), ['-n', '10', 'sh', '-c', PROBE_SCRIPT]);
    assert.deepEqual(calls[0]!.args.slice(5), ['sh', '1500', '576', '1', '10.0.0.2', '10.0.0.3']);
    assert.match(PROBE_SCRIPT, /case "\$1" in \*:\*\) h=48;; \*\) h=28;; esac; ping -n -q -M do -c 2 .* -s \$\(\(\$2 - h\)\)/);
    assert.deepEqual(await probePathMtu(exec, [], { max: 1500, min: 576, timeoutS: 1 }), {});
    assert.equal(calls.length, 1, 'no peers, no process');
    await assert.rejects(probePathMtu(exec, ['10.0.0.2; reboot'], { max: 1500, min: 576, timeoutS: 1 }), { code: 'MESHD_BAD_ARGUMENT' });
    await assert.rejects(probePathMtu(exec, ['10.0.0.2'], { max: 500, min: 576, timeoutS: 1 }), { code: 'MESHD_BAD_ARGUMENT' });
    assert.equal(calls.length, 1);
  });
});

describe('MTU changes in the kernel plan', () => {
  const NET: OverlayNetwork = { id: 'aaaa', name: 'app', vni: 4200, subnet: '10.40.0.0/24', gateway: '10.40.0.1' };
  const FIXED: OverlayNetwork = { id: 'bbbb', name: 'db', vni: 4201, subnet: '10.41.0.0/24', gateway: '10.41.0.1', mtu: 1200 };
  const config = (underlayMtu: number) => ({ prefix: 'p-', hostNs: null, underlayIp: '10.99.1.1', underlayMtu, vxlanPort: 4789 });

  test('a lower underlay MTU: one batch per sandbox sets bridge, VXLAN and every task port; --mtu networks untouched', () => {
    const before = desiredNode({ config: config(1500), networks: [NET, FIXED], remote: [] }).state;
    const actual = {
      ...before,
      sandboxes: before.sandboxes.map((s) => ({ ...s, ports: [{ name: 'vt-aaaaaaaaaaaa', mtu: s.bridge!.mtu }, { name: 'vt-bbbbbbbbbbbb', mtu: s.bridge!.mtu }] })),
    };
    const after = desiredNode({ config: config(1400), networks: [NET, FIXED], remote: [] }).state;
    const ops = diff(after, actual);
    assert.deepEqual(ops, [
      { kind: 'ip', ns: 'p-ov-aaaa', line: 'link set br0 mtu 1350 up' },
      { kind: 'ip', ns: 'p-ov-aaaa', line: 'link set vx-4200 mtu 1350' },
      { kind: 'ip', ns: 'p-ov-aaaa', line: 'link set vt-aaaaaaaaaaaa mtu 1350' },
      { kind: 'ip', ns: 'p-ov-aaaa', line: 'link set vt-bbbbbbbbbbbb mtu 1350' },
    ]);
    const rows = sandboxRows(after, actual);
    assert.equal(rows[0]!.mtu, 1350);
    assert.deepEqual(rows[0]!.details, ['bridge mtu 1450 ≠ 1350', 'vxlan mtu 1450 ≠ 1350', 'port vt-aaaaaaaaaaaa mtu 1450 ≠ 1350', 'port vt-bbbbbbbbbbbb mtu 1450 ≠ 1350']);
    assert.deepEqual(rows[1]!, { ...rows[1]!, state: 'ok', mtu: 1200 });
  });

  test('task re-tune: one line per automatic-MTU overlay interface; --mtu and macvlan skipped', () => {
    const att = (id: string, driver: 'overlay' | 'macvlan', mtu?: number) => ({
      network: { id, name: id, vni: 4200, subnet: '10.40.0.0/24', gateway: '10.40.0.1', driver, ...(mtu !== undefined ? { mtu } : {}) },
      ip: '10.40.0.5', prefix: 24, mac: '02:42:0a:28:00:05',
    });
    const a = { task: { id: 't1' }, attachments: [att('n1', 'overlay'), att('n2', 'overlay', 1200), att('n3', 'macvlan'), att('n4', 'overlay')] } as unknown as Assignment;
    assert.equal(retuneScript(a, () => 1350), 'link set eth0 mtu 1350\nlink set eth3 mtu 1350\n');
    const fixedOnly = { task: { id: 't2' }, attachments: [att('n2', 'overlay', 1200)] } as unknown as Assignment;
    assert.equal(retuneScript(fixedOnly, () => 1350), '');
  });
});
