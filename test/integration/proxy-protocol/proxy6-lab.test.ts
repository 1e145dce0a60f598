/**
 * Issue 19 §6 over IPv6: PROXY protocol on a published port reached over IPv6, through the real
 * netctl and meshd on a 2-node Docker lab (`mpp6`), on a dual-stack underlay and on an IPv6-only one.
 *
 * nginx (meshd/nginx:1, the same nginx.conf as proxy-protocol-lab.test.ts: `listen 80
 * proxy_protocol`, a body and an access-log line naming `$proxy_protocol_addr`) is published with
 * `proxy-protocol=v1` (2 tasks) and `=v2` (1 task). The lab client curls every node's IPv6 underlay
 * address (`curl -6`): every answer, and every access-log line, names the client's own IPv6
 * address and the node's IPv6 address it dialled (v1 `PROXY TCP6`, v2 AF_INET6), while the TCP peer
 * nginx sees is an ingress address (the mesh still masquerades; the header carries the client).
 * Before the fix, on the dual underlay the agent listened on the IPv4 address only and the `ip6`
 * host table (which leaves proxied ports out of its DNAT) sent the connection nowhere: refused.
 * Each agent lists its IPv6 listeners in GET /v1/lb/status (dual: `underlay6Listeners`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inNs } from '../../helpers/cli.js';
import { agentClient, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';
import { CLIENT_ADDR, CLIENT_ADDR6, nodeAddr6, type LabUnderlay } from '../../../src/lab/plan.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import { createProxyServices, curlGet, logLinesWith, proxyNginxConf, tasksAnswering } from '../../helpers/proxy-lab.js';

const LAB = 'mpp6';

const NGINX_CONF = proxyNginxConf('mpp6', 'client $proxy_protocol_addr server $proxy_protocol_server_addr via $remote_addr');

interface LbStatus {
  ingress: { underlay6?: string[]; proxyProtocol: { listeners: Array<{ port: number; version: string }>; underlay6Listeners?: Array<{ host: string; port: number; version: string }>; failed: Record<string, string> } } | null;
}

const url = (addr: string, port: number): string => (addr.includes(':') ? `http://[${addr}]:${port}/` : `http://${addr}:${port}/`);
const re = (s: string): string => s.replace(/[.]/g, '\\.');

for (const underlay of ['dual', 'ipv6'] as LabUnderlay[]) {
  describe(`PROXY protocol over IPv6, ${underlay} underlay (lab ${LAB}, docker runtime)`, { timeout: 600_000 }, () => {
    const L = new DockerLab(LAB);
    let lab: LabState;
    const m = (...args: string[]) => L.m(...args);

    /** One GET from the lab client namespace: the body, or null (curl's exit code in `why`). */
    const get = (u: string) => curlGet(lab.client.netns, u, u.includes('[') ? ['-6'] : ['-4']);

    /** What a failed wait prints: the node's proxy status and its host ip6 table. */
    async function diagnose(node: string, u: string): Promise<string> {
      const st = await agentClient(lab, node).call<LbStatus>('GET', '/v1/lb/status').catch((e: Error) => ({ ingress: e.message }));
      const nft = inNs(`mlab-${LAB}-${node}`, ['nft', 'list', 'table', 'ip6', 'meshd-ingress']).stdout || '(none)';
      return `${get(u).why}; lb status of ${node}: ${JSON.stringify(st.ingress)}\nhost ip6 table:\n${nft}`.slice(0, 4000);
    }

    before(async () => {
      lab = await L.up({ nodes: 2, networks: ['app'], underlay });
    });
    after(async () => {
      if (process.env.MPP6_KEEP_LAB) return;
      await L.down();
    });

    test('nginx behind proxy-protocol=v1 and v2 sees and logs the lab client\'s IPv6 address on every node', async () => {
      await createProxyServices(L, 'ngx-pp6', NGINX_CONF);

      for (const n of lab.nodes) {
        const addrs = [nodeAddr6(n.index), ...(underlay === 'dual' ? [n.underlay] : [])];
        for (const addr of addrs) {
          const client = addr.includes(':') ? CLIENT_ADDR6 : CLIENT_ADDR;
          for (const [port, version] of [[8090, 'v1'], [8091, 'v2']] as const) {
            const u = url(addr, port);
            const { value: body } = await waitFor(`${u} answers through the ${version} proxy`, () => get(u).body ?? false, 60_000, 250, () => diagnose(n.name, u));
            const [, seen, server, peer] = /^client (\S+) server (\S+) via (\S+) on /.exec(body) ?? [];
            process.stdout.write(`# ${underlay}: ${u} (${n.name}, ${version}) → ${body}\n`);
            assert.equal(seen, client, `${u}: nginx names the lab client (${body})`);
            assert.equal(server, addr, `${u}: the header names the address the client dialled (${body})`);
            assert.match(peer ?? '', /^10\.255\./, `${u}: the TCP peer is an ingress address: the mesh masquerades, the header carries the client (${body})`);
          }
        }
        const st = await agentClient(lab, n.name).call<LbStatus>('GET', '/v1/lb/status');
        const pp = st.ingress?.proxyProtocol;
        assert.deepEqual(pp?.failed, {}, `${n.name}: no port failed`);
        assert.deepEqual(pp?.listeners.map((l) => [l.port, l.version]).sort(), [[8090, 'v1'], [8091, 'v2']], `${n.name}'s listeners on its advertised address`);
        if (underlay === 'dual') {
          assert.deepEqual(pp?.underlay6Listeners?.map((l) => [l.host, l.port, l.version]).sort(), [[nodeAddr6(n.index), 8090, 'v1'], [nodeAddr6(n.index), 8091, 'v2']], `${n.name}'s listeners on its IPv6 underlay address`);
        } else {
          assert.equal(n.underlay, nodeAddr6(n.index), 'IPv6-only: the advertised address is the IPv6 one');
          assert.equal(pp?.underlay6Listeners, undefined, `${n.name}: no other IPv6 address`);
        }
      }

      // Both of pp's tasks answer over IPv6 (balancing stays in the kernel).
      const u1 = url(nodeAddr6(1), 8090);
      const hosts = await tasksAnswering('both tasks of pp answer through n1 over IPv6', () => get(u1).body, 2);
      assert.equal(hosts.size, 2);

      // Access logs: every IPv6 line names the client's IPv6 address and a node's IPv6 address.
      for (const svc of ['pp', 'pp2']) {
        const port = svc === 'pp' ? 8090 : 8091;
        const lines = await logLinesWith(`${svc}'s access log names the lab client's IPv6 address`, async () => ok(await m('service', 'logs', svc), `service logs ${svc}`).stdout, `mpp6 client=${CLIENT_ADDR6}:`);
        for (const l of lines) {
          assert.match(l, new RegExp(`mpp6 client=${re(CLIENT_ADDR6)}:\\d+ peer=10\\.255\\.\\d+\\.\\d+ server=fd99:6c61:6200::[12]:${port}$`), `${svc} log line: ${l}`);
        }
        process.stdout.write(`# ${underlay}: ${svc} logged ${lines.length} IPv6 line(s), e.g. ${lines[0]!.trim().slice(-120)}\n`);
      }
    });

    if (underlay === 'dual') {
      test('an IPv6 underlay address added at runtime serves the proxied ports after the next check; removed, it stops', async () => {
        const n1 = lab.nodes[0]!;
        const ns = `mlab-${LAB}-${n1.name}`;
        const extra = 'fd99:6c61:6200::1:9'; // outside the nodes' range (::1-::fa), like the client's ::1:2
        const u = url(extra, 8090);
        const status = async () => (await agentClient(lab, n1.name).call<LbStatus>('GET', '/v1/lb/status')).ingress;
        const t0 = Date.now();
        assert.equal(inNs(ns, ['ip', 'addr', 'add', `${extra}/64`, 'dev', 'eth0', 'nodad']).code, 0, 'ip addr add');
        try {
          const { value: body, ms } = await waitFor(`${u} answers through the proxy after the agent's periodic check (10 s)`, () => get(u).body ?? false, 60_000, 250, () => diagnose(n1.name, u));
          assert.match(body, new RegExp(`^client ${re(CLIENT_ADDR6)} server ${re(extra)} via 10\\.255\\.`), body);
          const st = await status();
          assert.ok(st?.underlay6?.includes(extra), `the agent read the new address: ${JSON.stringify(st?.underlay6)}`);
          assert.deepEqual(st?.proxyProtocol.underlay6Listeners?.filter((l) => l.host === extra).map((l) => l.port).sort(), [8090, 8091]);
          process.stdout.write(`# dual: ${extra} added on ${n1.name}: proxied after ${ms} ms → ${body}\n`);
        } finally {
          inNs(ns, ['ip', 'addr', 'del', `${extra}/64`, 'dev', 'eth0']);
        }
        const t1 = Date.now();
        const { ms } = await waitFor(`${n1.name} closes its listeners on ${extra} after the next check`, async () => {
          const st = await status();
          return !st?.underlay6?.includes(extra) && !(st?.proxyProtocol.underlay6Listeners ?? []).some((l) => l.host === extra) && st;
        }, 60_000, 250, async () => JSON.stringify(await status()));
        assert.equal(get(url(nodeAddr6(n1.index), 8090)).body?.startsWith(`client ${CLIENT_ADDR6} server ${nodeAddr6(n1.index)} `), true, 'the node\'s own IPv6 address still answers');
        process.stdout.write(`# dual: ${extra} removed: listeners closed after ${ms} ms (added at +0, removed at +${t1 - t0} ms)\n`);
      });
    }
  });
}
