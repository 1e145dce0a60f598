/**
 * IPv6 published ports on the IPVS dataplane (issue #19 item 2 leftovers): `-f MARK -6` fwmark
 * services marked by the `ip6 meshd-ipvs6` table (golden), `ipvsadm -S -n` lines with `-6` parsed
 * to `-f MARK -6` specs, and the read-back joining them with the ip6 mark table (real `nft -j`
 * listings): nothing is drift after a sync, a removed real server or a lost mark element is.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exec, ExecOptions, ExecResult } from '../../../src/adapters/exec.js';
import { IpvsDataplane } from '../../../src/adapters/dataplane/ipvs.js';
import { parseNftMarks } from '../../../src/adapters/dataplane/nft-parse.js';
import { ingress6Of } from '../../../src/agent/lb/plan.js';
import { renderIpvs6, renderIpvsFull, renderIpvsIncremental } from '../../../src/core/lb/ipvs-render.js';
import { parseIpvsSaveText } from '../../../src/core/lb/ipvs-save.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile, type Backend, type IngressPublish, type LbDesired } from '../../../src/core/lb/model.js';
import { IPVS6_MARKS4_LISTING, IPVS6_MARKS6_LISTING } from './listing-ipvs6.js';

const B: Backend[] = [
  { id: 't1', ip: '10.255.0.3', ip6: ingress6Of('10.255.0.3'), state: 'active', local: true },
  { id: 't2', ip: '10.255.0.4', ip6: ingress6Of('10.255.0.4'), state: 'active' },
  { id: 't3', ip: '10.255.0.6', state: 'active' },
];
const web = (backends: Backend[], over: Partial<IngressPublish> = {}): IngressPublish => ({ service: 'web', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends, ...over });
/** What listing-ipvs6.ts was listed from: web (cluster) on 8080, loc (policy local) on 8081. */
const desired = (): LbDesired => ({ services: [], ingress: [web(B), web(B, { service: 'loc', publishedPort: 8081, policy: 'local' })] });

const IPVS = `-A -f 256 -s rr
-a -f 256 -r 10.255.0.3:80 -m -w 1
-a -f 256 -r 10.255.0.4:80 -m -w 1
-a -f 256 -r 10.255.0.6:80 -m -w 1
-A -f 257 -s rr
-a -f 257 -r 10.255.0.3:80 -m -w 1
-A -f 258 -6 -s rr
-a -f 258 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 1
-a -f 258 -6 -r [fd6d:6573:6864:ff00::aff:4]:80 -m -w 1
-A -f 259 -6 -s rr
-a -f 259 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 1
`;

const NFT6 = `table ip6 meshd-ipvs6
delete table ip6 meshd-ipvs6
table ip6 meshd-ipvs6 {
	map ingress-marks {
		type inet_proto . inet_service : mark
		elements = { tcp . 8080 : 258, tcp . 8081 : 259 }
	}
	set snat-marks {
		type mark
		elements = { 258 }
	}
	chain mangle-pre {
		type filter hook prerouting priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain mangle-out {
		type route hook output priority -150; policy accept;
		fib daddr type local meta mark set meta l4proto . th dport map @ingress-marks
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		meta mark @snat-marks masquerade
	}
}
`;

/** What `ipvsadm -S -n` prints for IPVS above (ipvsadm writes the mark, then `-6`, then the rest). */
const SAVE = IPVS;

/** `ipvsadm -S -n` answers `save`, `nft -j list table FAMILY …` the listings (absent → nft's error). */
class FakeKernel implements Exec {
  calls: string[] = [];
  constructor(public save: string, public tables: { ip?: unknown; ip6?: unknown }) {}
  async run(cmd: string, args: readonly string[], _opts?: ExecOptions): Promise<ExecResult> {
    this.calls.push([cmd, ...args].join(' '));
    if (cmd === 'ipvsadm' && args[0] === '-S') return { code: 0, stdout: this.save, stderr: '' };
    if (cmd === 'nft' && args[0] === '-j') {
      const t = args[3] === 'ip6' ? this.tables.ip6 : this.tables.ip;
      return t === undefined ? { code: 1, stdout: '', stderr: 'Error: No such file or directory' } : { code: 0, stdout: JSON.stringify(t), stderr: '' };
    }
    return { code: 0, stdout: '', stderr: '' };
  }
  async check(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<string> {
    const r = await this.run(cmd, args, opts);
    if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}`);
    return r.stdout;
  }
}

describe('IPVS IPv6 published ports: render (golden)', () => {
  test('full: -6 fwmark services after the IPv4 ones, the ip6 table marks and masquerades cluster ports only', () => {
    const p = renderIpvsFull(compile(desired()));
    assert.equal(p.ipvs, IPVS);
    assert.equal(p.nft.slice(p.nft.indexOf('table ip6')), NFT6);
    assert.equal(p.addrs, '', 'no VIP on lo: published ports are matched on any local address');
    assert.equal(p.marks.get('ingress6 tcp 8080'), 258);
  });

  test('without IPv6 published ports the ip6 table renders exactly as before (VIPs only, or just the delete)', () => {
    assert.equal(renderIpvs6([]), 'table ip6 meshd-ipvs6\ndelete table ip6 meshd-ipvs6\n');
    assert.equal(renderIpvs6(['fd00::10']), `table ip6 meshd-ipvs6
delete table ip6 meshd-ipvs6
table ip6 meshd-ipvs6 {
	set vips {
		type ipv6_addr
		elements = { fd00::10 }
	}
	chain nat-post {
		type nat hook postrouting priority 100; policy accept;
		ct original ip6 daddr @vips oifname != "lo" fib saddr type local masquerade
	}
}
`);
    const both = renderIpvs6(['fd00::10'], [{ elem: 'tcp . 8080', mark: 300, masquerade: true }]);
    assert.match(both, /ct original ip6 daddr @vips oifname != "lo" fib saddr type local masquerade\n\t\tmeta mark @snat-marks masquerade\n/, 'one nat-post: VIP self-masquerade, then the cluster ports');
  });

  test('incremental: an endpoint change edits reals only; a new or removed IPv6 port re-renders the ip6 table in the same transaction', () => {
    const full = renderIpvsFull(compile(desired()));
    const { ingress } = desired();
    const fewer: LbDesired = { services: [], ingress: [web([B[0]!, B[2]!]), ingress[1]!] };
    const p = renderIpvsIncremental(compile(desired()), compile(fewer), full.marks);
    assert.equal(p.ipvs, '-d -f 256 -r 10.255.0.4:80\n-d -f 258 -6 -r [fd6d:6573:6864:ff00::aff:4]:80\n');
    assert.equal(p.nft, '', 'marks unchanged: no nft');
    const gone: LbDesired = { services: [], ingress: [ingress[0]!] };
    const q = renderIpvsIncremental(compile(desired()), compile(gone), full.marks);
    assert.equal(q.ipvs, '-D -f 257\n-D -f 259 -6\n');
    assert.ok(q.nft.startsWith('delete element ip meshd-ipvs ingress-marks { tcp . 8081 }\n'), q.nft);
    assert.match(q.nft, /table ip6 meshd-ipvs6 \{\n\tmap ingress-marks \{\n\t\ttype inet_proto \. inet_service : mark\n\t\telements = \{ tcp \. 8080 : 258 \}/);
    const none = renderIpvsIncremental(compile(gone), compile({ services: [], ingress: [web(B.map(({ ip6: _, ...b }) => b))] }), q.marks);
    assert.equal(none.ipvs, '-D -f 258 -6\n');
    assert.ok(none.nft.endsWith('table ip6 meshd-ipvs6\ndelete table ip6 meshd-ipvs6\n'), 'last IPv6 port gone: the ip6 table goes');
  });

  test('a port with no active target: new TCP connections get a reset from the ip6 table (IPVS\'s ICMPv6 came ~1 s late), re-rendered when the last target goes', () => {
    const full = renderIpvsFull(compile(desired()));
    const { ingress } = desired();
    const drained: LbDesired = { services: [], ingress: [web([{ ...B[0]!, state: 'draining' }, { ...B[1]!, state: 'draining' }]), ingress[1]!] };
    const p = renderIpvsIncremental(compile(desired()), compile(drained), full.marks);
    assert.match(p.nft, /\tset empty-ingress \{\n\t\ttype inet_proto \. inet_service\n\t\telements = \{ tcp \. 8080 \}\n\t\}\n/);
    assert.equal(p.nft.match(/\t\tct state new fib daddr type local meta l4proto \. th dport @empty-ingress meta l4proto tcp reject with tcp reset\n/g)?.length, 2, 'prerouting and output');
    assert.match(p.ipvs, /^-e -f 258 -6 -r \[fd6d:6573:6864:ff00::aff:3\]:80 -m -w 0$/m, 'the draining reals stay at weight 0: established connections go on');
    assert.doesNotMatch(NFT6, /empty-ingress|reject/, 'no empty port: no set, no rule');
  });

  test('a full resync against a kernel that holds exactly the desired state changes nothing', () => {
    const c = compile(desired());
    const full = renderIpvsFull(c);
    const kernel = { services: parseIpvsSaveText(SAVE), marks: full.marks };
    assert.equal(renderIpvsFull(c, new Map(), kernel).ipvs, '');
    // a lost -6 service is added back whole, a stray one deleted with its -6
    const lost = parseIpvsSaveText(SAVE.replace(/^.*-f 259 -6.*\n/gm, '') + '-A -f 700 -6 -s rr\n');
    assert.equal(renderIpvsFull(c, new Map(), { services: lost, marks: full.marks }).ipvs, '-D -f 700 -6\n-A -f 259 -6 -s rr\n-a -f 259 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 1\n');
  });
});

describe('IPVS IPv6 published ports: parse and read-back', () => {
  test('ipvsadm -S -n: -6 makes the spec -f MARK -6, never a scheduler flag', () => {
    const s = parseIpvsSaveText('-A -f 258 -6 -s wrr\n-a -f 258 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 3\n-A -f 258 -s rr\n');
    assert.deepEqual(s.map((x) => [x.spec, x.fwmark, x.scheduler, x.extra]), [['-f 258 -6', 258, 'wrr', ''], ['-f 258', 258, 'rr', '']]);
    assert.deepEqual(s[0]!.reals, [{ ip: 'fd6d:6573:6864:ff00::aff:3', port: 80, weight: 3, forward: 'm' }]);
  });

  test('the ip6 mark table (real nft -j listing): ingress-marks are ingress6 frontends, snat-marks their masquerade', () => {
    const m = parseNftMarks(IPVS6_MARKS6_LISTING, 'ip6');
    assert.deepEqual([...m].map(([k, v]) => [k, v.key, v.masquerade]).sort(), [[258, 'ingress6 tcp 8080', true], [259, 'ingress6 tcp 8081', false]]);
    assert.deepEqual([...parseNftMarks(IPVS6_MARKS4_LISTING)].map(([k, v]) => [k, v.key]).sort(), [[256, 'ingress tcp 8080'], [257, 'ingress tcp 8081']]);
  });

  test('read-back after a sync: no drift; a removed real and a lost mark element are drift', async () => {
    const want = expectedKernel(compile(desired()), 'ipvs');
    const ex = new FakeKernel(SAVE, { ip: IPVS6_MARKS4_LISTING, ip6: IPVS6_MARKS6_LISTING });
    const dp = new IpvsDataplane(ex);
    const k = await dp.readKernel({ netns: 'x' });
    assert.deepEqual(compareKernel(want, k), []);
    assert.deepEqual(k.frontends.find((f) => f.key === 'ingress6 tcp 8080')?.targets, [{ ip: 'fd6d:6573:6864:ff00::aff:3', port: 80 }, { ip: 'fd6d:6573:6864:ff00::aff:4', port: 80 }]);
    assert.deepEqual(ex.calls, ['ipvsadm -S -n', 'nft -j list table ip meshd-ipvs', 'nft -j list table ip6 meshd-ipvs6']);

    ex.save = SAVE.replace('-a -f 258 -6 -r [fd6d:6573:6864:ff00::aff:4]:80 -m -w 1\n', '');
    assert.deepEqual(compareKernel(want, await dp.readKernel()), [
      'ingress6 tcp 8080: targets [fd6d:6573:6864:ff00::aff:3]:80, want [fd6d:6573:6864:ff00::aff:3]:80,[fd6d:6573:6864:ff00::aff:4]:80',
      'ingress6 tcp 8080: weights [fd6d:6573:6864:ff00::aff:3]:80=1, want [fd6d:6573:6864:ff00::aff:3]:80=1,[fd6d:6573:6864:ff00::aff:4]:80=1',
    ]);

    ex.save = SAVE;
    ex.tables.ip6 = undefined; // someone deleted the ip6 table: its services route nothing
    assert.deepEqual(compareKernel(want, await dp.readKernel()), [
      'missing ingress6 tcp 8080',
      'missing ingress6 tcp 8081',
      'stray IPVS service fwmark 258 (IPv6) ([fd6d:6573:6864:ff00::aff:3]:80,[fd6d:6573:6864:ff00::aff:4]:80): no frontend in the mark table routes to it',
      'stray IPVS service fwmark 259 (IPv6) ([fd6d:6573:6864:ff00::aff:3]:80): no frontend in the mark table routes to it',
    ]);
  });

  test('no -6 fwmark service in the kernel: the ip6 table is not read (one exec fewer in every task namespace)', async () => {
    const ex = new FakeKernel('-A -f 256 -s rr\n', { ip: IPVS6_MARKS4_LISTING });
    await new IpvsDataplane(ex).readKernel();
    assert.deepEqual(ex.calls, ['ipvsadm -S -n', 'nft -j list table ip meshd-ipvs']);
  });
});
