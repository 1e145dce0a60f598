/**
 * Issue #19 item 2: the kernel read-back covers IPv6 VIP frontends — nftables from the
 * `ip6 meshd-lb6` table (in the same `nft -j list ruleset` as the IPv4 table: one read per
 * namespace), IPVS from its `-t [VIP6]:PORT` address services — so `netctl debug lb` shows them and
 * the drift check finds and repairs a lost IPv6 element with one full transaction.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exec, ExecOptions, ExecResult } from '../../../src/adapters/exec.js';
import { IpvsDataplane, v6Frontend } from '../../../src/adapters/dataplane/ipvs.js';
import { parseNft6Lb, tableOf } from '../../../src/adapters/dataplane/nft6-parse.js';
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import { DriftTracker } from '../../../src/agent/lb/drift.js';
import { lbStatus } from '../../../src/agent/lb/status.js';
import { newNsEntry, type NsEntry } from '../../../src/agent/lb/types.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile, type Backend, type Compiled, type Frontend, type LbDesired } from '../../../src/core/lb/model.js';
import { renderIpvsFull } from '../../../src/core/lb/ipvs-render.js';
import { parseIpvsSaveText } from '../../../src/core/lb/ipvs-save.js';
import { NFT_V6_RULESET } from './listing6.js';
import { NFT_V6_INGRESS_RULESET } from './listing6-ingress.js';

const B: Backend[] = [
  { id: 't1', ip: '10.9.0.2', ip6: 'fd00:9::2', state: 'active' },
  { id: 't2', ip: '10.9.0.3', ip6: 'fd00:9::3', state: 'active' },
  { id: 't3', ip: '10.9.0.4', state: 'active' },
];

/** What listing6.ts was listed from (rendered by planNftFull, loaded with nft -f). */
function dualStack(): LbDesired {
  return {
    services: [
      { id: 'svc-web', name: 'web', vip: '10.9.0.10', vip6: 'fd00:9::10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends: B },
      { id: 'svc-api', name: 'api', vip: '10.9.0.11', vip6: 'fd00:9::11', lb: { algorithm: 'round-robin' }, ports: [{ proto: 'udp', port: 53, targetPort: 53 }], backends: B.slice(0, 2) },
      { id: 'svc-off', name: 'off', vip: '10.9.0.12', vip6: 'fd00:9::12', ports: [{ proto: 'tcp', port: 443, targetPort: 8443 }], backends: [B[2]!] },
    ],
    ingress: [],
  };
}

/** The listing without one `vips` element of the IPv6 table (what `nft delete element ip6 meshd-lb6 vips {…}` leaves). */
function withoutV6Element(doc: unknown, vip: string): unknown {
  const copy = JSON.parse(JSON.stringify(doc)) as { nftables: Record<string, { family?: string; name?: string; elem?: unknown[] }>[] };
  for (const it of copy.nftables) {
    const m = it.map;
    if (m?.family === 'ip6' && m.name === 'vips') m.elem = (m.elem ?? []).filter((e) => !JSON.stringify(e).includes(`"${vip}"`));
  }
  return copy;
}

/** `nft -j list ruleset` answers `kernel()`; `nft -f -` scripts are recorded. */
class FakeNft implements Exec {
  scripts: string[] = [];
  lists = 0;
  constructor(public kernel: () => unknown) {}
  async run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    if (cmd === 'nft' && args.join(' ') === '-j list ruleset') {
      this.lists++;
      return { code: 0, stdout: JSON.stringify(this.kernel()), stderr: '' };
    }
    if (cmd === 'nft' && args[0] === '-f') this.scripts.push(String(opts?.input));
    return { code: 0, stdout: '', stderr: '' };
  }
  async check(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<string> {
    return (await this.run(cmd, args, opts)).stdout;
  }
}

describe('IPv6 VIP read-back: nftables', () => {
  test('the real ruleset parses to exactly the expected kernel state, IPv4 and IPv6 frontends', async () => {
    const k = await new NftablesDataplane(new FakeNft(() => NFT_V6_RULESET)).readKernel({ netns: 'x' });
    assert.deepEqual(compareKernel(expectedKernel(compile(dualStack()), 'nftables'), k), []);
    const web6 = k.frontends.find((f) => f.key === 'vip fd00:9::10 tcp 80');
    assert.deepEqual(web6?.targets, [{ ip: 'fd00:9::2', port: 8080 }, { ip: 'fd00:9::3', port: 8080 }]);
    assert.equal(k.frontends.find((f) => f.key === 'vip fd00:9::11 udp 53')?.algorithm, 'round-robin');
    assert.deepEqual(k.frontends.find((f) => f.key === 'vip fd00:9::12 tcp 443')?.targets, [], 'an empty IPv6 VIP: refused, no targets');
    assert.equal(k.frontends.length, 6);
  });
  test('only our table: a set named vips in another table is not read; garbage → nothing', () => {
    assert.equal(tableOf(NFT_V6_RULESET, 'inet', 'meshd-policy').nftables.length, 2);
    assert.ok(parseNft6Lb(NFT_V6_RULESET).every((f) => f.vip !== 'fd00:9::99'));
    assert.deepEqual(parseNft6Lb({}), []);
    assert.deepEqual(parseNft6Lb({ nftables: [{ map: { family: 'ip6', table: 'meshd-lb6', name: 'vips', elem: [[{ concat: [1, 'tcp', 80] }, { goto: { target: 'fe-0' } }]] } }] }), []);
  });
  test('a lost IPv6 element is drift, judged so by the periodic check, and repaired by one full transaction', async () => {
    let kernel: unknown = NFT_V6_RULESET;
    const ex = new FakeNft(() => kernel);
    const dp = new NftablesDataplane(ex);
    const want = dualStack();
    await dp.apply(want, { netns: 'ns1', sysctls: false });
    const e: NsEntry = newNsEntry('ns1', 'task', 't1');
    e.desired = want;
    assert.deepEqual((await lbStatus(dp, e, undefined, undefined, null, want))!.drift, [], 'in sync');

    kernel = withoutV6Element(NFT_V6_RULESET, 'fd00:9::10'); // someone deleted web's IPv6 VIP element
    const tracker = new DriftTracker<NsEntry>();
    const snap = tracker.begin([e]);
    const s = (await lbStatus(dp, e, undefined, undefined, null, want))!;
    assert.deepEqual(s.drift, ['missing vip fd00:9::10 tcp 80']);
    const row = s.frontends.find((r) => r.key === 'vip fd00:9::10 tcp 80');
    assert.deepEqual(row?.backends.map((b) => b.target), ['[fd00:9::2]:8080', '[fd00:9::3]:8080'], 'debug lb lists the IPv6 frontend with its backends');
    assert.equal(row?.kernel, null, 'and shows it absent from the kernel');
    assert.equal(tracker.judge(snap, e, s), true, 'the drift check resyncs the namespace');
    assert.equal(tracker.resyncs, 1);

    // what the LB does on that verdict: request a full resync, apply again
    ex.scripts = [];
    dp.requestFullResync({ netns: 'ns1' });
    const r = await dp.apply(want, { netns: 'ns1', sysctls: false });
    assert.equal(r.mode, 'full');
    assert.equal(ex.scripts.length, 1, 'one transaction for both families');
    assert.match(ex.scripts[0]!, /^table ip meshd-lb\n/);
    assert.match(ex.scripts[0]!, /\ntable ip6 meshd-lb6\ndelete table ip6 meshd-lb6\ntable ip6 meshd-lb6 \{/);
    assert.match(ex.scripts[0]!, /fd00:9::10 \. tcp \. 80 comment "web tcp\/80 ipv6" : goto fe-0/);
    kernel = NFT_V6_RULESET; // what that script loads (listing6.ts was listed from this very render)
    const after = (await lbStatus(dp, e, undefined, undefined, null, want))!;
    assert.deepEqual(after.drift, []);
    assert.deepEqual(after.frontends.find((x) => x.key === 'vip fd00:9::10 tcp 80')?.kernel, ['[fd00:9::2]:8080', '[fd00:9::3]:8080']);
  });
});

describe('IPv6 VIP read-back: IPVS', () => {
  test('`-t [VIP6]:PORT` services are the IPv6 frontends; IPv4 address services still are not ours', () => {
    assert.deepEqual(v6Frontend('-t [fd00:9::10]:80'), { key: 'vip fd00:9::10 tcp 80', kind: 'vip', vip: 'fd00:9::10', proto: 'tcp', port: 80, masquerade: false });
    assert.equal(v6Frontend('-u [fd00:9:0::11]:53')?.key, 'vip fd00:9::11 udp 53', 'canonical text, as the model keeps it');
    assert.equal(v6Frontend('-t 1.2.3.4:80'), undefined);
    assert.equal(v6Frontend('-f 256'), undefined);
  });
  test('a full render read back is in sync; a lost IPv6 real server is drift and the resync adds exactly it back', async () => {
    const c = compile(dualStack());
    const full = renderIpvsFull(c);
    // what `ipvsadm -S -n` prints after `ipvsadm -R` of the full render (same lines, minus nothing)
    let save = full.ipvs;
    const marks = { nftables: [{ map: { family: 'ip', table: 'meshd-ipvs', name: 'vip-marks', elem: [...full.marks].map(([k, m]) => { const [, vip, proto, port] = k.split(' '); return [{ concat: [vip, proto, Number(port)] }, m]; }) } }] };
    const exec: Exec = {
      run: async (cmd) => ({ code: 0, stdout: cmd === 'ipvsadm' ? save : JSON.stringify(marks), stderr: '' }),
      check: async (cmd) => (cmd === 'ipvsadm' ? save : JSON.stringify(marks)),
    };
    const dp = new IpvsDataplane(exec);
    assert.deepEqual(compareKernel(expectedKernel(c, 'ipvs'), await dp.readKernel()), []);
    save = save.replace('-a -t [fd00:9::10]:80 -r [fd00:9::3]:8080 -m -w 1\n', '');
    assert.deepEqual(compareKernel(expectedKernel(c, 'ipvs'), await dp.readKernel()), [
      'vip fd00:9::10 tcp 80: targets [fd00:9::2]:8080, want [fd00:9::2]:8080,[fd00:9::3]:8080',
      'vip fd00:9::10 tcp 80: weights [fd00:9::2]:8080=1, want [fd00:9::2]:8080=1,[fd00:9::3]:8080=1',
    ]);
    save += '-A -t [fd00:9::77]:80 -s rr\n';
    assert.ok(compareKernel(expectedKernel(c, 'ipvs'), await dp.readKernel()).includes('unexpected vip fd00:9::77 tcp 80'), 'a leftover IPv6 service is drift');
    // the full resync the drift check asks for: exactly the difference, in one ipvsadm -R
    const resync = renderIpvsFull(c, full.marks, { services: parseIpvsSaveText(save), marks: full.marks });
    assert.equal(resync.ipvs, '-D -t [fd00:9::77]:80\n-a -t [fd00:9::10]:80 -r [fd00:9::3]:8080 -m -w 1\n');
  });
});

/** The frontends whose renderNft6 output listing6-ingress.ts holds (IPv6 published ports of the ingress sandbox). */
function ingress6(): Compiled {
  const t = (ip: string, port: number) => ({ ip, port });
  const fs: Frontend[] = [
    { key: 'ingress6 tcp 8080', kind: 'ingress', ipv6: true, proto: 'tcp', port: 8080, targets: [t('fd6d:6573:6864:ff00::aff:5', 80), t('fd6d:6573:6864:ff00::aff:6', 80)], draining: [], masquerade: true, comment: 'web tcp/8080 ipv6' },
    { key: 'ingress6 tcp 8081', kind: 'ingress', ipv6: true, proto: 'tcp', port: 8081, targets: [t('fd6d:6573:6864:ff00::aff:7', 80)], draining: [], masquerade: false, comment: 'loc tcp/8081 ipv6', algorithm: 'source-hash' },
    { key: 'ingress6 udp 5353', kind: 'ingress', ipv6: true, proto: 'udp', port: 5353, targets: [], draining: [], masquerade: true, comment: 'dns udp/5353 ipv6' },
    { key: 'vip fd00:9::10 tcp 80', kind: 'vip', vip: 'fd00:9::10', proto: 'tcp', port: 80, targets: [t('fd00:9::2', 8080)], draining: [], masquerade: false, comment: 'web tcp/80 ipv6' },
  ];
  return new Map(fs.map((f) => [f.key, f]));
}

describe('IPv6 published ports read-back (ingress sandbox)', () => {
  test('the real ruleset parses to exactly the expected kernel state: targets, source-hash, masquerade by the mark, an empty port', () => {
    const got = parseNft6Lb(NFT_V6_INGRESS_RULESET);
    assert.deepEqual(compareKernel(expectedKernel(ingress6(), 'nftables'), { backend: 'nftables', frontends: got }), []);
    assert.equal(got.find((f) => f.key === 'ingress6 tcp 8080')?.masquerade, true);
    assert.equal(got.find((f) => f.key === 'ingress6 tcp 8081')?.masquerade, false);
    assert.deepEqual(got.find((f) => f.key === 'ingress6 udp 5353')?.targets, []);
  });
  test('a cluster port whose chain lost its mark is drift (masquerade false, want true)', () => {
    const doc = JSON.parse(JSON.stringify(NFT_V6_INGRESS_RULESET)) as { nftables: Array<Record<string, { expr?: unknown[] }>> };
    for (const it of doc.nftables) {
      const r = it.rule;
      if (r?.expr) r.expr = r.expr.filter((e) => !(e && typeof e === 'object' && 'mangle' in e));
    }
    const d = compareKernel(expectedKernel(ingress6(), 'nftables'), { backend: 'nftables', frontends: parseNft6Lb(doc) });
    assert.deepEqual(d, ['ingress6 tcp 8080: masquerade false, want true']);
  });
  test('IPVS programs IPv6 published ports too (-f MARK -6 services, ipvs6-ingress.test.ts), so it expects them with their scheduler', () => {
    const k = expectedKernel(ingress6(), 'ipvs').frontends;
    assert.deepEqual(k.map((f) => f.key), ['ingress6 tcp 8080', 'ingress6 tcp 8081', 'ingress6 udp 5353', 'vip fd00:9::10 tcp 80']);
    assert.deepEqual(k.map((f) => f.scheduler), ['rr', 'sh', 'rr', 'rr']);
  });
});
