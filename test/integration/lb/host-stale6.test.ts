/**
 * The host ingress table after an agent restart, in the real nftables of a scratch namespace (`mends-h6`):
 * the previous run programmed the ip and ip6 `meshd-ingress` tables (the node had an IPv6 underlay
 * address); the node lost it while the agent was down; the restarted agent (a new IngressSide, which never
 * programmed an ip6 table) reads `nft list tables` and deletes the ip6 table in the transaction that
 * programs the ip one. Then a restart on a kernel without the ip6 table leaves ip6 alone, and the periodic
 * check deletes one that appeared since. The namespace is deleted after the run, failed or not.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { realExec, type Exec } from '../../../src/adapters/exec.js';
import type { Logger } from '../../../src/adapters/logger.js';
import { IngressSide } from '../../../src/agent/lb/ingress-side.js';
import { renderHostIngress } from '../../../src/agent/lb/plan.js';
import { LbState } from '../../../src/agent/lb/state.js';
import type { LbSubsystemOptions } from '../../../src/agent/lb/types.js';
import type { OverlaySubsystem } from '../../../src/agent/overlay/overlay.js';
import { ManualClock } from '../../../src/core/clock.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { IngressPublish } from '../../../src/core/lb/model.js';
import { FakeGossip } from '../../helpers/fake-gossip.js';
import { scratchNetns } from '../../helpers/netns.js';

const NS = 'mends-h6';
const dir = mkdtempSync(join(tmpdir(), 'meshd-h6-'));
const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
const WEB: IngressPublish = { service: 'web', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [] };
/** Every program run in NS (the agent's exec, moved into the scratch namespace). */
const inNs: Exec = {
  run: (cmd, args, opts) => realExec.run(cmd, args, { ...opts, netns: NS }),
  check: (cmd, args, opts) => realExec.check(cmd, args, { ...opts, netns: NS }),
};
const tables = async (): Promise<string[]> => (await inNs.check('nft', ['list', 'tables'])).split('\n').filter((l) => l.includes('meshd-ingress')).sort();

/** A freshly started agent's host side (knows nothing of what an earlier run programmed). */
function restarted(): IngressSide {
  const o = {
    nodeName: 'n1', underlayIp: '10.99.0.1', prefix: 'mends-', dataDir: dir, gossip: new FakeGossip('n1'), clock: new ManualClock(1_000), log, exec: inNs,
    overlay: { defineNetwork() {}, addLocal() {} } as unknown as OverlaySubsystem,
  } as LbSubsystemOptions;
  const side = new IngressSide(o, new LbState('n1'), (id) => `ns-${id}`, () => undefined);
  side.setNode({ ip: '10.255.0.3', mac: macFromIp('10.255.0.3') });
  return side;
}

describe('host ingress table: an ip6 table left before a restart is deleted (real nft)', () => {
  scratchNetns(NS);
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('restart after the IPv6 address went: one transaction leaves only the ip table', async () => {
    // the previous run, with an IPv6 underlay address
    await inNs.check('nft', ['-f', '-'], { input: renderHostIngress('10.99.0.1', [{ proto: 'tcp', port: 8080 }], ['fd99:6c61:6200::2']) });
    assert.deepEqual(await tables(), ['table ip meshd-ingress', 'table ip6 meshd-ingress']);
    const side = restarted();
    try {
      await side.programHost([WEB]);
    } finally {
      await side.stop();
    }
    assert.deepEqual(await tables(), ['table ip meshd-ingress'], 'the ip6 table is gone');
    assert.match(await inNs.check('nft', ['list', 'table', 'ip', 'meshd-ingress']), /elements = \{ tcp \. 8080 \}[\s\S]*ip daddr 10\.99\.0\.1 meta l4proto \. th dport @published dnat to 172\.31\.255\.2/);
  });

  test('restart with no ip6 table: ip6 untouched; the periodic check deletes one that appeared since', async () => {
    const side = restarted();
    try {
      await side.programHost([WEB]);
      assert.deepEqual(await tables(), ['table ip meshd-ingress']);
      await inNs.check('nft', ['-f', '-'], { input: renderHostIngress('10.99.0.1', [{ proto: 'tcp', port: 8080 }], ['fd99:6c61:6200::2']) });
      assert.equal(side.recheck(), true);
      await side.programHost([WEB]);
      assert.deepEqual(await tables(), ['table ip meshd-ingress'], 'deleted at the check');
    } finally {
      await side.stop();
    }
  });
});
