import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exec, ExecOptions, ExecResult } from '../../../src/adapters/exec.js';
import { MeshError, isMeshError } from '../../../src/core/errors.js';
import { createDataplane, detectDataplaneKind } from '../../../src/adapters/dataplane/detect.js';
import { IpvsDataplane, parseIpvsSave } from '../../../src/adapters/dataplane/ipvs.js';
import { MemoryDataplane } from '../../../src/adapters/dataplane/memory.js';
import { parseNftLb, parseNftMarks } from '../../../src/adapters/dataplane/nft-parse.js';
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile } from '../../../src/core/lb/model.js';
import { base, changed } from './fixtures.js';
import * as G from './golden.js';
import { NFT_IPVS_MARKS_LISTING, NFT_LB_LISTING } from './listing.js';

interface Call {
  cmd: string;
  args: readonly string[];
  opts: ExecOptions | undefined;
}

/** Records calls; `respond` decides each result (default: success, empty output). */
class RecordingExec implements Exec {
  calls: Call[] = [];
  constructor(public respond: (c: Call) => ExecResult = () => ({ code: 0, stdout: '', stderr: '' })) {}
  async run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const c = { cmd, args, opts };
    this.calls.push(c);
    return this.respond(c);
  }
  async check(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<string> {
    const r = await this.run(cmd, args, opts);
    if (r.code !== 0) throw new MeshError('MESHD_EXEC_FAILED', `${cmd}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }
}

/** A namespace without the IPVS mark table (`nft -j list table` fails as nft does); everything else succeeds empty. */
const noTable = (c: Call): ExecResult => (c.cmd === 'nft' && c.args[0] === '-j' ? { code: 1, stdout: '', stderr: 'Error: No such file or directory' } : { code: 0, stdout: '', stderr: '' });

describe('nft -j read-back parser', () => {
  test('real listing of base() parses to exactly the expected kernel state', () => {
    const got = { backend: 'nftables' as const, frontends: parseNftLb(NFT_LB_LISTING) };
    assert.deepEqual(compareKernel(expectedKernel(compile(base()), 'nftables'), got), []);
    assert.deepEqual(got.frontends.find((f) => f.key === 'ingress tcp 8080')?.masquerade, true);
    assert.deepEqual(got.frontends.find((f) => f.key === 'vip 10.9.0.12 tcp 443')?.targets, []);
  });
  test('garbage → nothing', () => {
    assert.deepEqual(parseNftLb({}), []);
    assert.deepEqual(parseNftLb({ nftables: [{ map: { name: 'vips', elem: [[{ concat: [1, 2] }, 'x']] } }] }), []);
  });
  test('ipvs mark table', () => {
    const m = parseNftMarks(NFT_IPVS_MARKS_LISTING);
    assert.deepEqual(m.get(256), { key: 'ingress tcp 8080', kind: 'ingress', proto: 'tcp', port: 8080, masquerade: true });
    assert.equal(m.get(258)?.key, 'vip 10.9.0.10 tcp 80');
    assert.equal(m.size, 6);
  });
  test('ipvsadm -S -n', () => {
    const s = parseIpvsSave('-A -f 256 -s rr\n-a -f 256 -r 10.0.1.2:8080 -m -w 1\n-a -f 256 -r 10.0.1.3:8080 -m -w 0\n-A -t 1.2.3.4:80 -s rr\n-A -f 257 -s rr\n');
    assert.deepEqual(s.get(256)?.reals, [{ ip: '10.0.1.2', port: 8080, weight: 1 }, { ip: '10.0.1.3', port: 8080, weight: 0 }]);
    assert.deepEqual(s.get(257)?.reals, []);
    assert.equal(s.size, 2);
  });
});

describe('NftablesDataplane (recording exec)', () => {
  test('one nft -f - per apply; full sync also sets conntrack timeouts; noop runs nothing', async () => {
    const ex = new RecordingExec();
    const dp = new NftablesDataplane(ex);
    const r1 = await dp.apply(base(), { netns: 'mtlb-x' });
    assert.equal(r1.mode, 'full');
    assert.deepEqual(ex.calls.map((c) => c.cmd), ['nft', 'sysctl']);
    assert.equal(ex.calls[0]!.opts?.input, G.NFT_FULL);
    assert.equal(ex.calls[0]!.opts?.netns, 'mtlb-x');
    ex.calls = [];
    assert.equal((await dp.apply(base(), { netns: 'mtlb-x' })).mode, 'noop');
    assert.equal(ex.calls.length, 0);
    const r3 = await dp.apply(changed(), { netns: 'mtlb-x' });
    assert.equal(r3.mode, 'incremental');
    assert.deepEqual(ex.calls.map((c) => [c.cmd, c.opts?.input]), [['nft', G.NFT_INCREMENTAL]]);
    // another namespace has its own sync state
    assert.equal((await dp.apply(base(), { netns: 'mtlb-y' })).mode, 'full');
  });
  test('failure → MESHD_EXEC_FAILED, next apply is a full resync', async () => {
    let fail = false;
    const ex = new RecordingExec(() => (fail ? { code: 1, stdout: '', stderr: 'Error: No such file or directory' } : { code: 0, stdout: '', stderr: '' }));
    const dp = new NftablesDataplane(ex);
    await dp.apply(base());
    fail = true;
    await assert.rejects(dp.apply(changed()), (e: unknown) => isMeshError(e) && e.code === 'MESHD_EXEC_FAILED' && /incremental/.test(e.message));
    fail = false;
    ex.calls = [];
    const r = await dp.apply(changed());
    assert.equal(r.mode, 'full');
    assert.match(String(ex.calls[0]!.opts?.input), /^table ip meshd-lb\ndelete table ip meshd-lb\n/);
  });
  test('readKernel: one `nft -j list ruleset`; absent tables → empty state; a failed listing → MESHD_EXEC_FAILED', async () => {
    const ex = new RecordingExec(() => ({ code: 0, stdout: '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}', stderr: '' }));
    assert.deepEqual(await new NftablesDataplane(ex).readKernel({ netns: 'x' }), { backend: 'nftables', frontends: [] });
    assert.deepEqual(ex.calls.map((c) => [c.cmd, ...c.args].join(' ')), ['nft -j list ruleset']);
    const bad = new NftablesDataplane(new RecordingExec(() => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' })));
    await assert.rejects(bad.readKernel(), (e: unknown) => isMeshError(e) && e.code === 'MESHD_EXEC_FAILED' && /list ruleset failed: Error: Operation not permitted/.test(e.message));
  });
  test('readKernel parses nft -j', async () => {
    const dp = new NftablesDataplane(new RecordingExec(() => ({ code: 0, stdout: JSON.stringify(NFT_LB_LISTING), stderr: '' })));
    assert.equal((await dp.readKernel()).frontends.length, 6);
  });
});

describe('IpvsDataplane (recording exec)', () => {
  test('full: read-back, timeouts, sysctls, addresses, ipvsadm-restore, mark table; incremental: only what changed', async () => {
    const ex = new RecordingExec(noTable);
    const dp = new IpvsDataplane(ex);
    await dp.apply(base(), { netns: 'mtlb-v' });
    assert.deepEqual(ex.calls.map((c) => [c.cmd, ...c.args].join(' ')), ['ipvsadm -S -n', 'nft -j list table ip meshd-ipvs', 'ipvsadm --set 86400 120 300', 'sysctl -q -w net.ipv4.vs.conntrack=1 net.ipv4.vs.expire_nodest_conn=1 net.ipv4.vs.expire_quiescent_template=1 net.ipv4.ip_forward=1 net.ipv4.icmp_ratemask=6160', 'ip -force -batch -', 'ipvsadm -R', 'nft -f -']);
    assert.equal(ex.calls[5]!.opts?.input, G.IPVS_FULL);
    assert.equal(ex.calls[6]!.opts?.input, G.IPVS_FULL_NFT);
    ex.calls = [];
    const r = await dp.apply(changed(), { netns: 'mtlb-v' });
    assert.equal(r.mode, 'incremental');
    assert.deepEqual(ex.calls.map((c) => [c.cmd, c.opts?.input]), [['ip', G.IPVS_INCREMENTAL_ADDRS], ['ipvsadm', G.IPVS_INCREMENTAL], ['nft', G.IPVS_INCREMENTAL_NFT]]);
  });
  test('full resync after an agent restart: diff against the kernel read-back (drifted), never -C', async () => {
    const ex = new RecordingExec((c) => ({ code: 0, stdout: c.cmd === 'ipvsadm' && c.args[0] === '-S' ? G.IPVS_DRIFTED_SAVE : c.cmd === 'nft' && c.args[0] === '-j' ? JSON.stringify(NFT_IPVS_MARKS_LISTING) : '', stderr: '' }));
    const r = await new IpvsDataplane(ex).apply(base(), { netns: 'mtlb-v' });
    assert.equal(r.mode, 'full');
    const restore = ex.calls.find((c) => c.cmd === 'ipvsadm' && c.args[0] === '-R');
    assert.equal(restore?.opts?.input, G.IPVS_RESYNC);
    assert.ok(ex.calls.every((c) => !(c.cmd === 'ipvsadm' && c.args[0] === '-C')), 'no ipvsadm -C');
  });
  test('full resync whose read-back fails: MESHD_EXEC_FAILED, nothing written, the next apply reads again', async () => {
    let fail = true;
    const ex = new RecordingExec((c) => (fail && c.cmd === 'ipvsadm' && c.args[0] === '-S' ? { code: 2, stdout: '', stderr: 'Can\'t initialize ipvs' } : noTable(c)));
    const dp = new IpvsDataplane(ex);
    await assert.rejects(dp.apply(base()), (e: unknown) => isMeshError(e) && e.code === 'MESHD_EXEC_FAILED' && /cannot read the kernel/.test(e.message));
    assert.deepEqual(ex.calls.map((c) => c.args[0]), ['-S']);
    fail = false;
    assert.equal((await dp.apply(base())).mode, 'full');
  });
  test('readKernel joins ipvsadm -S with the mark table; weight 0 = draining', async () => {
    const save = G.IPVS_FULL;
    const dp = new IpvsDataplane(new RecordingExec((c) => ({ code: 0, stdout: c.cmd === 'ipvsadm' ? save : JSON.stringify(NFT_IPVS_MARKS_LISTING), stderr: '' })));
    const k = await dp.readKernel();
    assert.deepEqual(compareKernel(expectedKernel(compile(base()), 'ipvs'), k), []);
    assert.deepEqual(k.frontends.find((f) => f.key === 'vip 10.9.0.10 tcp 80')?.draining, [{ ip: '10.0.1.3', port: 8080 }]);
  });
  test('readKernel is as faithful as nftables: weight-0 reals compared, scheduler/forwarding/weight issues and stray services are drift', async () => {
    const save = G.IPVS_FULL.replace('-A -f 256 -s rr', '-A -f 256 -s wlc')
      .replace('-a -f 257 -r 10.0.1.2:8080 -m -w 1', '-a -f 257 -r 10.0.1.2:8080 -g -w 1')
      .replace('-a -f 259 -r 10.0.1.20:53 -m -w 1', '-a -f 259 -r 10.0.1.20:53 -m -w 5')
      .replace('-a -f 258 -r 10.0.1.3:8080 -m -w 0\n', '') + '-A -f 300 -s rr\n-a -f 300 -r 10.0.1.7:80 -m -w 1\n-A -t 1.2.3.4:80 -s rr\n';
    const dp = new IpvsDataplane(new RecordingExec((c) => ({ code: 0, stdout: c.cmd === 'ipvsadm' ? save : JSON.stringify(NFT_IPVS_MARKS_LISTING), stderr: '' })));
    const k = await dp.readKernel();
    assert.deepEqual(compareKernel(expectedKernel(compile(base()), 'ipvs'), k), [
      'ingress tcp 8080: IPVS scheduler wlc, want rr',
      'ingress tcp 8081: real 10.0.1.2:8080 forwards by -g, want -m (masquerade)',
      'vip 10.9.0.10 tcp 80: weight-0 (draining) reals (none), want 10.0.1.3:8080',
      'vip 10.9.0.11 tcp 53: weights 10.0.1.20:53=5, want 10.0.1.20:53=1',
      'stray IPVS service fwmark 300 (10.0.1.7:80): no frontend in the mark table routes to it',
    ]);
    // nftables holds no draining targets: never compared there
    assert.deepEqual(expectedKernel(compile(base()), 'nftables').frontends.flatMap((f) => f.draining), []);
  });
  test('failure → next apply full', async () => {
    let fail = false;
    const dp = new IpvsDataplane(new RecordingExec((c) => (fail && c.cmd === 'ipvsadm' && c.args[0] === '-R' ? { code: 1, stdout: '', stderr: 'Memory allocation problem' } : noTable(c))));
    await dp.apply(base());
    fail = true;
    await assert.rejects(dp.apply(changed()), /ipvs incremental sync failed/);
    fail = false;
    assert.equal((await dp.apply(changed())).mode, 'full');
  });
});

describe('MemoryDataplane', () => {
  test('apply / readKernel / injected failure / flush', async () => {
    const dp = new MemoryDataplane();
    assert.equal((await dp.apply(base(), { netns: 'a' })).mode, 'full');
    assert.deepEqual(compareKernel(expectedKernel(compile(base()), 'memory'), await dp.readKernel({ netns: 'a' })), []);
    assert.equal(dp.lastScript({ netns: 'a' }), G.NFT_FULL);
    dp.failNextApplies(1);
    await assert.rejects(dp.apply(changed(), { netns: 'a' }), (e: unknown) => isMeshError(e) && e.code === 'MESHD_EXEC_FAILED');
    assert.deepEqual(compareKernel(expectedKernel(compile(base()), 'memory'), await dp.readKernel({ netns: 'a' })), [], 'kernel unchanged by a failed apply');
    assert.equal((await dp.apply(changed(), { netns: 'a' })).mode, 'full');
    await dp.flush({ netns: 'a' });
    assert.deepEqual((await dp.readKernel({ netns: 'a' })).frontends, []);
  });
});

describe('detect', () => {
  test('auto: /proc/net/ip_vs → ipvs, else nftables; override wins; unknown rejected', () => {
    assert.equal(detectDataplaneKind('auto', () => true), 'ipvs');
    assert.equal(detectDataplaneKind('auto', () => false), 'nftables');
    assert.equal(detectDataplaneKind('nftables', () => true), 'nftables');
    assert.equal(detectDataplaneKind('ipvs', () => false), 'ipvs');
    assert.throws(() => detectDataplaneKind('xdp' as 'auto'), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_CONFIG');
    assert.equal(createDataplane('auto', { exists: () => false }).kind, 'nftables');
    assert.equal(createDataplane('memory').kind, 'memory');
  });
});
