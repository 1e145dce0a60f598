/**
 * Issue 19 §6 end to end: PROXY protocol on a published port, through the real netctl and meshd on
 * a 2-node lab (`mppx`) with Debian's docker.io (images built locally, never pulled).
 *
 * nginx (meshd/nginx:1) gets its whole nginx.conf from a netctl config: `listen 80 proxy_protocol`,
 * an access log line naming `$proxy_protocol_addr` (the client the header names) and `$remote_addr`
 * (the TCP peer nginx sees: the ingress sandbox's masquerade address), and a body that echoes
 * `$proxy_protocol_addr`. Published with `proxy-protocol=v1` (2 tasks) and `=v2` (1 task):
 * - the lab client curls every node's published ports: every answer names the client's address,
 *   and so do the access-log lines (`netctl service logs`), while their TCP peer is an ingress
 *   address — the mesh still masquerades, the header carries the client;
 * - each node's agent reports its listeners (GET /v1/lb/status: port, version) and counts them on
 *   /metrics (meshd_proxy_connections_total{result="accepted"});
 * - `mode=host` and `policy=local` with a proxy-protocol are refused with the field named.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { agentClient, waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import { createProxyServices, curlGet, logLinesWith, proxyNginxConf, tasksAnswering } from '../../helpers/proxy-lab.js';

/** MPPX_LAB names the lab otherwise (a helper's prefix, so as not to collide with another run of this file). */
const LAB = process.env.MPPX_LAB ?? 'mppx';
const L = new DockerLab(LAB);
let lab: LabState;
const m = (...args: string[]) => L.m(...args);

const NGINX_CONF = proxyNginxConf('mppx', 'client $proxy_protocol_addr via $remote_addr');

/** One GET from the lab client namespace: the body, or null (curl's exit code in `why`). */
const get = (url: string) => curlGet(lab.client.netns, url);

interface LbStatus { ingress: { proxyProtocol: { listeners: Array<{ port: number; version: string }>; failed: Record<string, string> } } | null }

before(async () => {
  lab = await L.up({ nodes: 2, networks: ['app'] });
});
after(async () => {
  if (process.env.MPPX_KEEP_LAB) return;
  await L.down();
});

describe('PROXY protocol on published ports (lab, docker runtime)', { timeout: 600_000 }, () => {
  test('nginx behind proxy-protocol=v1 and v2 sees and logs the lab client on every node', async () => {
    await createProxyServices(L, 'ngx-pp', NGINX_CONF);

    const client = lab.client.underlay;
    for (const n of lab.nodes) {
      for (const [port, version] of [[8090, 'v1'], [8091, 'v2']] as const) {
        const url = `http://${n.underlay}:${port}/`;
        const { value: body } = await waitFor(`${url} answers through the ${version} proxy`, () => {
          const r = get(url);
          return r.body ?? false;
        }, 60_000, 250, async () => `${get(url).why}; lb status of ${n.name}: ${JSON.stringify((await agentClient(lab, n.name).call<LbStatus>('GET', '/v1/lb/status')).ingress?.proxyProtocol)}`);
        const [, seen, peer] = /^client (\S+) via (\S+) on /.exec(body) ?? [];
        assert.equal(seen, client, `${url}: nginx names the lab client (${body})`);
        assert.notEqual(peer, client, `${url}: the TCP peer is the mesh's masquerade address, not the client (${body})`);
        assert.match(peer ?? '', /^10\.255\./, `${url}: the TCP peer is an ingress address (${body})`);
      }
      const st = await agentClient(lab, n.name).call<LbStatus>('GET', '/v1/lb/status');
      assert.deepEqual(st.ingress?.proxyProtocol.listeners.map((l) => [l.port, l.version]).sort(), [[8090, 'v1'], [8091, 'v2']], `${n.name}'s listeners`);
      assert.deepEqual(st.ingress?.proxyProtocol.failed, {});
      const metrics = await agentClient(lab, n.name).text('/metrics');
      const accepted = Number(/^meshd_proxy_connections_total\{result="accepted"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
      assert.ok(accepted >= 2, `${n.name} counted its proxied connections: ${accepted}`);
    }

    // Both of pp's tasks answer (balancing stays in the kernel), each logging the client.
    const hosts = await tasksAnswering('both tasks of pp answer through n1', () => get(`http://${lab.nodes[0]!.underlay}:8090/`).body, 2);
    assert.equal(hosts.size, 2);
    for (const svc of ['pp', 'pp2']) {
      const lines = await logLinesWith(`${svc}'s access log names the lab client`, async () => ok(await m('service', 'logs', svc), `service logs ${svc}`).stdout, 'mppx client=');
      for (const l of lines) {
        assert.match(l, new RegExp(`mppx client=${client.replace(/\./g, '\\.')}:\\d+ peer=10\\.255\\.\\d+\\.\\d+ server=10\\.99\\.\\d+\\.\\d+:${svc === 'pp' ? 8090 : 8091}$`), `${svc} log line: ${l}`);
      }
    }
  });

  test('refused where no proxy runs: mode host, policy local (the field named)', async () => {
    for (const [spec, why] of [['mode=host,published=8092,target=80,policy=local,proxy-protocol=v1', /proxyProtocol: mode host keeps the client address/], ['published=8092,target=80,policy=local,proxy-protocol=v2', /proxyProtocol: policy local keeps the client address/]] as const) {
      const r = await m('service', 'create', '--name', 'ppbad', '--publish', spec, IMAGES.nginx1);
      assert.notEqual(r.code, 0, `${spec} is refused`);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /MESHD_BAD_ARGUMENT|invalid argument|ports\.0\.proxyProtocol/);
    }
  });
});
