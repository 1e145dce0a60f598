/**
 * Pure parts of the kernel edge: parsers of captured iproute2/nft JSON, the guard's
 * nft scripts (golden), and the runtime's attach scripts (golden).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFdb, parseNeigh, parseNetnsList, parseSandboxLinks, parseStrayHostLinks } from '../../../src/adapters/netlink/read.js';
import { NftVxlanGuard, parseGuard, renderGuardInstall, renderGuardUpdate } from '../../../src/adapters/firewall/vxlan-guard.js';
import type { Exec } from '../../../src/adapters/exec.js';
import { attachScripts, attachShell, shellWord, taskIfName, vethName } from '../../../src/adapters/runtime/attach.js';
import { realExec } from '../../../src/adapters/exec.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { whoamiBody } from '../../../src/adapters/runtime/whoami.js';

// Captured from `ip -j -d -n NS addr show` (trimmed to the fields we read).
const ADDR = JSON.stringify([
  { ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  {
    ifname: 'vx-4100', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, master: 'br0',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 4100, local: '192.168.213.1', port: 4789, learning: false, proxy: true } }, addr_info: [],
  },
  {
    ifname: 'br0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1450, linkinfo: { info_kind: 'bridge' },
    addr_info: [{ family: 'inet6', local: 'fe80::1', prefixlen: 64 }, { family: 'inet', local: '10.77.1.1', prefixlen: 24 }],
  },
  { ifname: 'vt-task0', flags: ['UP'], mtu: 1450, master: 'br0', linkinfo: { info_kind: 'veth' }, addr_info: [] },
]);
const FDB = '[{"mac":"fe:f2:54:8c:3c:cf","ifname":"vx-4100","flags":[],"master":"br0","state":"permanent"},' +
  '{"mac":"02:42:0A:4D:01:0C","ifname":"vx-4100","dst":"192.168.213.2","linkNetNsId":0,"flags":["self"],"state":"permanent"},' +
  '{"mac":"00:00:00:00:00:00","ifname":"vx-4100","dst":"192.168.213.3","flags":["self"],"state":"permanent"},' +
  '{"mac":"33:33:00:00:00:01","ifname":"br0","flags":["self"],"state":"permanent"}]';
const NEIGH = '[{"dst":"10.77.1.12","dev":"vx-4100","lladdr":"02:42:0a:4d:01:0c","state":["PERMANENT"]},' +
  '{"dst":"10.77.1.2","dev":"vx-4100","lladdr":"02:42:0a:4d:01:02","state":["PERMANENT"]},' +
  '{"dst":"10.77.1.50","dev":"br0","lladdr":"02:42:0a:4d:01:32","state":["PERMANENT"]},' +
  '{"dst":"10.77.1.51","dev":"vx-4100","lladdr":"02:42:0a:4d:01:33","state":["REACHABLE"]}]';

describe('read parsers', () => {
  test('sandbox links: bridge (IPv4 only), our VXLAN device, task veths on the bridge as ports (name + MTU only)', () => {
    assert.deepEqual(parseSandboxLinks(ADDR), {
      bridge: { name: 'br0', mtu: 1450, up: true, addrs: ['10.77.1.1/24'] },
      vxlan: { name: 'vx-4100', vni: 4100, port: 4789, local: '192.168.213.1', learning: false, proxy: true, mtu: 1450, master: 'br0', up: true },
      ports: [{ name: 'vt-task0', mtu: 1450 }],
    });
    assert.deepEqual(parseSandboxLinks(''), { bridge: null, vxlan: null, ports: [] });
  });
  test('fdb: only the device remote entries, lower-cased, no all-zero default', () => {
    assert.deepEqual(parseFdb(FDB, 'vx-4100'), [{ mac: '02:42:0a:4d:01:0c', dst: '192.168.213.2' }]);
  });
  test('neigh: only permanent IPv4 entries on the device, numeric order', () => {
    assert.deepEqual(parseNeigh(NEIGH, 'vx-4100'), [{ ip: '10.77.1.2', mac: '02:42:0a:4d:01:02' }, { ip: '10.77.1.12', mac: '02:42:0a:4d:01:0c' }]);
  });
  test('netns list and stray host links', () => {
    assert.deepEqual(parseNetnsList('a (id: 3)\nb\n\n'), ['a', 'b']);
    assert.deepEqual(parseStrayHostLinks(JSON.stringify([{ ifname: 'vx-9', linkinfo: { info_kind: 'vxlan' } }, { ifname: 'flannel.1', linkinfo: { info_kind: 'vxlan' } }])), ['vx-9']);
  });
  test('garbage JSON → MeshError', () => {
    assert.throws(() => parseFdb('{oops', 'x'), /cannot parse bridge fdb JSON/);
  });
});

describe('VXLAN guard scripts (golden)', () => {
  test('install', () => {
    assert.equal(renderGuardInstall(4789, ['192.168.1.3', '192.168.1.2', '192.168.1.3']), [
      'table inet meshd-vxlan {}',
      'delete table inet meshd-vxlan',
      'table inet meshd-vxlan {',
      '  counter dropped {}',
      '  set members {',
      '    type ipv4_addr',
      '    elements = { 192.168.1.2, 192.168.1.3 }',
      '  }',
      '  set members6 {',
      '    type ipv6_addr',
      '  }',
      '  chain guard {',
      '    type filter hook prerouting priority raw; policy accept;',
      '    ip frag-off & 0x1fff != 0 accept',
      '    frag frag-off != 0 accept',
      '    ip saddr @members udp dport 4789 accept',
      '    ip6 saddr @members6 udp dport 4789 accept',
      '    udp dport 4789 counter name "dropped" drop',
      '  }',
      '}',
      '',
    ].join('\n'));
    assert.doesNotMatch(renderGuardInstall(8472, []), /elements/);
  });
  test('install over an IPv6 underlay: members6 holds the canonical IPv6 members, IPv4 ones stay in members', () => {
    const s = renderGuardInstall(4789, ['fd6d:0:0:99::2', 'FD6D::99:3', '10.0.0.2']);
    assert.match(s, /  set members \{\n    type ipv4_addr\n    elements = \{ 10\.0\.0\.2 \}\n  \}/);
    assert.match(s, /  set members6 \{\n    type ipv6_addr\n    elements = \{ fd6d:0:0:99::2, fd6d::99:3 \}\n  \}/);
    assert.match(s, /    frag frag-off != 0 accept\n    ip saddr @members udp dport 4789 accept\n    ip6 saddr @members6 udp dport 4789 accept\n    udp dport 4789 counter name "dropped" drop\n/);
  });
  test('update is one flush + add (atomic in one nft -f)', () => {
    assert.equal(renderGuardUpdate(['10.0.0.2']), 'flush set inet meshd-vxlan members\nflush set inet meshd-vxlan members6\nadd element inet meshd-vxlan members { 10.0.0.2 }\n');
    assert.equal(renderGuardUpdate([]), 'flush set inet meshd-vxlan members\nflush set inet meshd-vxlan members6\n');
    assert.equal(renderGuardUpdate(['fd00:99::2', 'fd00:99:0::1']), 'flush set inet meshd-vxlan members\nflush set inet meshd-vxlan members6\n' +
      'add element inet meshd-vxlan members6 { fd00:99::1, fd00:99::2 }\n');
  });
  test('bad input', () => {
    assert.throws(() => renderGuardInstall(0, []), /invalid VXLAN port/);
    assert.throws(() => renderGuardUpdate(['1.2.3.4; flush ruleset']), /invalid member address/);
    assert.throws(() => renderGuardUpdate(['fd00::1; flush ruleset']), /invalid member address/);
    assert.throws(() => renderGuardUpdate(['[fd00::1]']), /invalid member address/);
  });
  test('parse nft -j output', () => {
    const j = JSON.stringify({ nftables: [
      { metainfo: {} },
      { counter: { family: 'inet', name: 'dropped', table: 'meshd-vxlan', packets: 7, bytes: 700 } },
      { set: { name: 'members', elem: ['192.168.1.3', '192.168.1.2'] } },
      { rule: { chain: 'guard', expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 4789 } }, { accept: null }] } },
    ] });
    assert.deepEqual(parseGuard(j), { installed: true, port: 4789, allow: ['192.168.1.2', '192.168.1.3'], droppedPackets: 7, fragmentsPass: false, ipv6: false });
    // The rule that lets non-first fragments through (as `nft -j` prints `ip frag-off & 0x1fff != 0 accept`).
    const withFrag = JSON.parse(j) as { nftables: unknown[] };
    withFrag.nftables.push({ rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { '&': [{ payload: { protocol: 'ip', field: 'frag-off' } }, 8191] }, right: 0 } }, { accept: null }] } });
    assert.equal(parseGuard(JSON.stringify(withFrag)).fragmentsPass, true);
    // members6 plus the IPv6 fragment rule (`frag frag-off != 0 accept`): ipv6 true, both sets in allow.
    withFrag.nftables.push({ set: { name: 'members6', elem: ['fd00:99::2'] } });
    assert.equal(parseGuard(JSON.stringify(withFrag)).ipv6, false);
    withFrag.nftables.push({ rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { exthdr: { name: 'frag', field: 'frag-off' } }, right: 0 } }, { accept: null }] } });
    const g = parseGuard(JSON.stringify(withFrag));
    assert.equal(g.ipv6, true);
    assert.deepEqual(g.allow, ['192.168.1.2', '192.168.1.3', 'fd00:99::2']);
  });
  test('an installed guard without the fragment rule (older version) is reinstalled, not just updated', async () => {
    const scripts: string[] = [];
    let installed = false;
    const listing = () => JSON.stringify({ nftables: [
      { set: { name: 'members', elem: ['10.0.0.2'] } },
      { rule: { chain: 'guard', expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 4789 } }, { accept: null }] } },
      ...(installed ? [{ rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { '&': [{ payload: { protocol: 'ip', field: 'frag-off' } }, 8191] }, right: 0 } }, { accept: null }] } },
        { set: { name: 'members6', elem: [] } },
        { rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { exthdr: { name: 'frag', field: 'frag-off' } }, right: 0 } }, { accept: null }] } }] : []),
    ] });
    const exec = {
      run: async () => ({ code: 0, stdout: listing(), stderr: '' }),
      check: async (_c: string, _a: readonly string[], o?: { input?: string }) => {
        scripts.push(o?.input ?? '');
        installed = /frag-off/.test(o?.input ?? '');
        return '';
      },
    } as unknown as Exec;
    await new NftVxlanGuard(exec, null).ensure(4789, ['10.0.0.2']);
    assert.equal(scripts.length, 1);
    assert.match(scripts[0]!, /delete table inet meshd-vxlan[\s\S]*ip frag-off & 0x1fff != 0 accept/);
  });
  test('an installed guard without the IPv6 set (before IPv6 underlays) is reinstalled', async () => {
    const scripts: string[] = [];
    let installed = false;
    const frag4 = { rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { '&': [{ payload: { protocol: 'ip', field: 'frag-off' } }, 8191] }, right: 0 } }, { accept: null }] } };
    const listing = () => JSON.stringify({ nftables: [
      { set: { name: 'members', elem: [] } }, frag4,
      { rule: { chain: 'guard', expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 4789 } }, { accept: null }] } },
      ...(installed ? [{ set: { name: 'members6', elem: ['fd00:99::2'] } },
        { rule: { chain: 'guard', expr: [{ match: { op: '!=', left: { exthdr: { name: 'frag', field: 'frag-off' } }, right: 0 } }, { accept: null }] } }] : []),
    ] });
    const exec = {
      run: async () => ({ code: 0, stdout: listing(), stderr: '' }),
      check: async (_c: string, _a: readonly string[], o?: { input?: string }) => {
        scripts.push(o?.input ?? '');
        installed = /members6/.test(o?.input ?? '');
        return '';
      },
    } as unknown as Exec;
    await new NftVxlanGuard(exec, null).ensure(4789, ['fd00:99:0::2']);
    assert.equal(scripts.length, 1);
    assert.match(scripts[0]!, /delete table inet meshd-vxlan[\s\S]*elements = \{ fd00:99::2 \}/);
  });
});

describe('runtime attach scripts (golden)', () => {
  test('veth born in the sandbox, peer eth0 in the task namespace', () => {
    const s = attachScripts('3f9a0c1d2e3b4a5c', 'meshd-t-3f9a0c1d2e3b', [{
      sandboxNs: 'meshd-ov-aaaa', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', mac: '02:42:0a:00:01:05', mtu: 1450,
    }]);
    assert.deepEqual(s.sandboxes, ['link add vt-3f9a0c1d2e3b mtu 1450 type veth peer name eth0 mtu 1450 netns meshd-t-3f9a0c1d2e3b\nlink set vt-3f9a0c1d2e3b master br0 up\nlink set br0 type bridge fdb_flush\n']);
    assert.equal(s.task, 'link set lo up\nlink set eth0 address 02:42:0a:00:01:05 up\naddr add 10.0.1.5/24 dev eth0\nroute add default via 10.0.1.1 dev eth0\n');
    assert.ok(vethName('x'.repeat(40)).length <= 15);
    assert.throws(() => vethName('a b'), /invalid task id/);
  });
  test('several networks: eth0, eth1 in attachment order, one veth per network sandbox, default route via the first', () => {
    const s = attachScripts('t2', 'meshd-t-t2', [
      { sandboxNs: 'meshd-ov-front', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', mac: '02:42:0a:00:01:05', mtu: 1450 },
      { sandboxNs: 'meshd-ov-back', bridge: 'br0', ip: '10.0.2.7', prefix: 16, gateway: '10.0.0.1', mac: '02:42:0a:00:02:07', mtu: 1400 },
    ]);
    assert.deepEqual(s.sandboxes, [
      'link add vt-t2 mtu 1450 type veth peer name eth0 mtu 1450 netns meshd-t-t2\nlink set vt-t2 master br0 up\nlink set br0 type bridge fdb_flush\n',
      'link add vt-t2 mtu 1400 type veth peer name eth1 mtu 1400 netns meshd-t-t2\nlink set vt-t2 master br0 up\nlink set br0 type bridge fdb_flush\n',
    ]);
    assert.equal(s.task, [
      'link set lo up',
      'link set eth0 address 02:42:0a:00:01:05 up', 'addr add 10.0.1.5/24 dev eth0',
      'link set eth1 address 02:42:0a:00:02:07 up', 'addr add 10.0.2.7/16 dev eth1',
      'route add default via 10.0.1.1 dev eth0', '',
    ].join('\n'));
    assert.equal(taskIfName(3), 'eth3');
    assert.throws(() => attachScripts('t3', 'ns', []), /no network attachment/);
  });
  test('macvlan: a sub-interface of the parent born in the task namespace, no sandbox script', () => {
    const s = attachScripts('t4', 'meshd-t-t4', [
      { sandboxNs: '', bridge: '', macvlanParent: 'eth0', ip: '192.168.41.3', prefix: 16, gateway: '192.168.41.1', mac: '02:42:c0:a8:29:03', mtu: 0 },
      { sandboxNs: 'meshd-ov-app', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', mac: '02:42:0a:00:01:05', mtu: 1450 },
      { sandboxNs: '', bridge: '', macvlanParent: 'eth1', ip: '172.20.0.9', prefix: 24, gateway: '172.20.0.1', mac: '02:42:ac:14:00:09', mtu: 1400 },
    ]);
    assert.equal(s.host, 'link add link eth0 name eth0 netns meshd-t-t4 type macvlan mode bridge\nlink add link eth1 name eth2 mtu 1400 netns meshd-t-t4 type macvlan mode bridge\n');
    assert.deepEqual(s.sandboxes.map((x) => x.split('\n')[0]), ['', 'link add vt-t4 mtu 1450 type veth peer name eth1 mtu 1450 netns meshd-t-t4', '']);
    assert.match(s.task, /link set eth0 address 02:42:c0:a8:29:03 up\naddr add 192\.168\.41\.3\/16 dev eth0\n/);
    assert.match(s.task, /route add default via 192\.168\.41\.1 dev eth0\n$/);
    assert.equal(attachScripts('t5', 'ns', [{ sandboxNs: 'x', bridge: 'br0', ip: '10.0.0.2', prefix: 24, gateway: '10.0.0.1', mac: '02:42:0a:00:00:02', mtu: 1450 }]).host, '');
  });
  test('the whole plumbing is one sh script: the namespace first, then one quoted here-document per ip batch (golden)', () => {
    const list = [{ sandboxNs: 'meshd-ov-aaaa', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', mac: '02:42:0a:00:01:05', mtu: 1450 }];
    const sh = attachShell('3f9a0c1d2e3b4a5c', 'meshd-t-3f9a0c1d2e3b', list, ['netns', 'add', 'meshd-t-3f9a0c1d2e3b']);
    const s = attachScripts('3f9a0c1d2e3b4a5c', 'meshd-t-3f9a0c1d2e3b', list);
    assert.equal(sh, [
      "ip 'netns' 'add' 'meshd-t-3f9a0c1d2e3b' || { echo 'meshd: ip netns add meshd-t-3f9a0c1d2e3b failed' >&2; exit 1; }",
      "ip -n 'meshd-ov-aaaa' -batch - <<'MESHD_EOF_0' || { echo 'meshd: plumbing in namespace meshd-ov-aaaa failed' >&2; exit 1; }",
      s.sandboxes[0]!.replace(/\n$/, ''), 'MESHD_EOF_0',
      "ip -n 'meshd-t-3f9a0c1d2e3b' -batch - <<'MESHD_EOF_1' || { echo 'meshd: plumbing in namespace meshd-t-3f9a0c1d2e3b failed' >&2; exit 1; }",
      s.task.replace(/\n$/, ''), 'MESHD_EOF_1', '',
    ].join('\n'));
    // Docker's sandbox: named by `netns attach`; macvlan lines run in the node's own namespace; no first step: none.
    const mv = attachShell('t4', 'ns4', [{ sandboxNs: '', bridge: '', macvlanParent: 'eth0', ip: '192.168.41.3', prefix: 16, gateway: '192.168.41.1', mac: '02:42:c0:a8:29:03', mtu: 0 }]);
    assert.match(mv, /^ip -batch - <<'MESHD_EOF_0' \|\| \{ echo 'meshd: plumbing in the node namespace failed'/);
    assert.equal(mv.match(/-batch/g)!.length, 2, 'node namespace + task namespace, no sandbox');
    assert.equal(shellWord("it's"), "'it'\\''s'");
  });
  test('the script stops at the first failing step and names it (real sh, a stand-in for ip)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshd-attach-'));
    try {
      // `ip` here records its argv and stdin; it fails for the sandbox batch.
      writeFileSync(join(dir, 'ip'), '#!/bin/sh\necho "ip $*" >> "$LOG"\ncase "$*" in *ov-bad*) cat >/dev/null; echo "Command failed -:1" >&2; exit 1;; esac\ncase "$*" in *-batch*) cat >> "$LOG";; esac\nexit 0\n', { mode: 0o755 });
      const log = join(dir, 'log');
      const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, LOG: log };
      const good = [{ sandboxNs: 'ov-ok', bridge: 'br0', ip: '10.0.1.5', prefix: 24, gateway: '10.0.1.1', mac: '02:42:0a:00:01:05', mtu: 1450 }];
      const r1 = await realExec.run('sh', ['-s'], { input: attachShell('t1', 'ns1', good, ['netns', 'add', 'ns1']), env });
      assert.equal(r1.code, 0, r1.stderr);
      const out = readFileSync(log, 'utf8');
      assert.match(out, /^ip netns add ns1\nip -n ov-ok -batch -\nlink add vt-t1 /);
      assert.match(out, /ip -n ns1 -batch -\nlink set lo up\n[\s\S]*route add default via 10\.0\.1\.1 dev eth0\n$/, 'each batch got its whole script, nothing expanded');
      rmSync(log);
      const r2 = await realExec.run('sh', ['-s'], { input: attachShell('t1', 'ns1', [{ ...good[0]!, sandboxNs: 'ov-bad' }], ['netns', 'add', 'ns1']), env });
      assert.notEqual(r2.code, 0);
      assert.match(r2.stderr, /Command failed -:1\nmeshd: plumbing in namespace ov-bad failed\n$/);
      assert.doesNotMatch(readFileSync(log, 'utf8'), /-n ns1/, 'nothing ran after the failing step');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('whoami body', () => {
    assert.equal(whoamiBody({ MESHD_TASK_NAME: 'web.1', MESHD_TASK_IP: '10.0.1.5', MESHD_NODE: 'n1' }), 'task: web.1\nip: 10.0.1.5\nnode: n1\n');
    // `GET /?remote`: the peer's address last, an IPv4 peer on the dual-stack socket without ::ffff:
    assert.equal(whoamiBody({ MESHD_TASK_NAME: 'web.1', MESHD_TASK_IP: '10.0.1.5', MESHD_NODE: 'n1' }, 'fd99:6c61:6200::1:2'), 'task: web.1\nip: 10.0.1.5\nnode: n1\nremote: fd99:6c61:6200::1:2\n');
    assert.match(whoamiBody({}, '::ffff:10.99.0.2'), /\nremote: 10\.99\.0\.2\n$/);
  });
});
