/**
 * The host ingress table after an agent restart (src/agent/lb/ingress-side.ts programHost): a node that lost all
 * its IPv6 underlay addresses while its agent was down still has the ip6 `meshd-ingress` table the previous run
 * programmed, DNATing ports that may no longer be published. The restarted agent reads the kernel's tables once
 * (`nft list tables`) and deletes it in the same transaction as its ip table; without an ip6 table the render
 * stays the IPv4-only one, byte for byte. The periodic check reads again. Real nft: the integration test
 * test/integration/lb/host-stale6.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { IngressSide } from '../../../../src/agent/lb/ingress-side.js';
import { hostTableFamilies, renderHostIngress } from '../../../../src/agent/lb/plan.js';
import { LbState } from '../../../../src/agent/lb/state.js';
import type { LbSubsystemOptions } from '../../../../src/agent/lb/types.js';
import type { OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import type { Exec, ExecResult } from '../../../../src/adapters/exec.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import { ManualClock } from '../../../../src/core/clock.js';
import type { IngressPublish } from '../../../../src/core/lb/model.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-stale6-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
const WEB: IngressPublish = { service: 'web', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [] };
const PORTS = [{ proto: 'tcp' as const, port: 8080 }];

/** An agent (just started) on a kernel whose `nft list tables` prints `kernel.tables`; `calls`: every exec, in order. */
function rig(tables: string) {
  const kernel = { tables };
  const calls: Array<{ argv: string; input?: string }> = [];
  const exec: Exec = {
    async run(cmd, args, opts) {
      calls.push({ argv: [cmd, ...args].join(' '), ...(opts?.input !== undefined ? { input: opts.input } : {}) });
      const out: ExecResult = { code: 0, stdout: cmd === 'nft' && args.join(' ') === 'list tables' ? kernel.tables : '', stderr: '' };
      return out;
    },
    async check(cmd, args, opts) {
      return (await exec.run(cmd, args, opts)).stdout;
    },
  };
  const o = {
    nodeName: 'n1', underlayIp: '10.99.0.1', prefix: 'x-', dataDir: dir, gossip: new FakeGossip('n1'), clock: new ManualClock(1_000), log, exec,
    overlay: { defineNetwork() {}, addLocal() {} } as unknown as OverlaySubsystem,
  } as LbSubsystemOptions;
  const side = new IngressSide(o, new LbState('n1'), (id) => `ns-${id}`, () => undefined);
  side.setNode({ ip: '10.255.0.3', mac: macFromIp('10.255.0.3') });
  const lists = () => calls.filter((c) => c.argv === 'nft list tables').length;
  const applied = () => calls.filter((c) => c.argv === 'nft -f -').map((c) => c.input);
  return { kernel, calls, side, lists, applied };
}

test('host tables: `nft list tables` parsed to the families holding meshd-ingress', () => {
  assert.deepEqual([...hostTableFamilies('table ip meshd-ingress\ntable inet filter\ntable ip6 meshd-ingress\ntable ip6 meshd-lb6\n')].sort(), ['ip', 'ip6']);
  assert.deepEqual([...hostTableFamilies('table ip meshd-ingress\ntable ip6 meshd-ingress-old\ntable ip6 nat\n')], ['ip']);
  assert.deepEqual([...hostTableFamilies('')], []);
});

test('host table after a restart: an ip6 table left by the previous run is deleted in the same transaction as the ip table', async () => {
  const { side, lists, applied, calls } = rig('table ip meshd-ingress\ntable ip6 meshd-ingress\ntable inet filter\n');
  await side.programHost([WEB]);
  assert.deepEqual(applied(), [renderHostIngress('10.99.0.1', PORTS, [], true)], 'one transaction, the ip6 table deleted in it');
  assert.equal(lists(), 1, 'one read of the kernel');
  assert.match(applied()[0]!, /\nadd table ip6 meshd-ingress\ndelete table ip6 meshd-ingress\n$/);
  assert.deepEqual(calls.map((c) => c.argv), ['nft list tables', 'nft -f -'], 'the read comes first');
  await side.programHost([WEB]);
  assert.equal(calls.length, 2, 'nothing changed: no read, no apply');
});

test('host table after a restart: without an ip6 table the render is the IPv4-only one; the periodic check reads the kernel again', async () => {
  const { kernel, side, lists, applied } = rig('table ip meshd-ingress\ntable ip6 nat\n');
  await side.programHost([WEB]);
  assert.deepEqual(applied(), [renderHostIngress('10.99.0.1', PORTS)], 'byte-identical to the IPv4-only render');
  assert.equal(lists(), 1, 'one read of the kernel');
  assert.doesNotMatch(applied()[0]!, /ip6/);
  await side.programHost([WEB]);
  assert.equal(lists(), 1, 'read once per start, not per sync');
  kernel.tables += 'table ip6 meshd-ingress\n'; // e.g. a ruleset restored from a saved file
  assert.equal(side.recheck(), true);
  await side.programHost([WEB]);
  assert.equal(lists(), 2, 'the periodic check (full resync of the host table) reads again');
  assert.deepEqual(applied().at(-1), renderHostIngress('10.99.0.1', PORTS, [], true), 'and deletes it');
});

test('host table with IPv6 underlay addresses: no read (the render replaces the ip6 table anyway)', async () => {
  const { side, lists, applied } = rig('table ip meshd-ingress\ntable ip6 meshd-ingress\n');
  (side as unknown as { underlay6: string[] }).underlay6 = ['fd99:6c61:6200::2'];
  await side.programHost([WEB]);
  assert.equal(lists(), 0);
  assert.deepEqual(applied(), [renderHostIngress('10.99.0.1', PORTS, ['fd99:6c61:6200::2'])]);
});
