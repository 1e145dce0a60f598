/**
 * What the PROXY protocol lab tests (test/integration/proxy-protocol/: proxy-protocol-lab over IPv4,
 * proxy6-lab over IPv6) share, written once: nginx behind `proxy-protocol=v1` and `=v2`, the requests they
 * send from the lab client's namespace through the mesh, and the access-log wait. nginx's body ends
 * `on $hostname`: which task answered.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs } from './cli.js';
import { IMAGES } from './docker.js';
import { ok, type DockerLab } from './docker-lab.js';
import { waitFor } from './lab.js';

/**
 * nginx.conf for meshd/nginx:1 behind a PROXY protocol header: `listen 80 proxy_protocol`, an access-log
 * line `TAG client=<header's client> peer=<TCP peer> server=<header's server>`, and `return 200 "BODY on
 * $hostname"` (BODY in nginx variables).
 */
export function proxyNginxConf(tag: string, body: string): string {
  return `user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr warn;
events { worker_connections 256; }
http {
    log_format pp '${tag} client=$proxy_protocol_addr:$proxy_protocol_port peer=$remote_addr server=$proxy_protocol_server_addr:$proxy_protocol_server_port';
    access_log /dev/stdout pp;
    server {
        listen 80 proxy_protocol default_server;
        location / {
            default_type text/plain;
            return 200 "${body} on $hostname\\n";
        }
    }
}
`;
}

/**
 * Config `config` holding `conf` as nginx.conf, and two nginx services with it on network `app`: `pp` (2
 * tasks) published on 8090 with `proxy-protocol=v1`, `pp2` (1 task) on 8091 with `=v2`.
 */
export async function createProxyServices(L: DockerLab, config: string, conf: string): Promise<void> {
  const file = join(L.tmp, 'nginx.conf');
  writeFileSync(file, conf);
  ok(await L.m('config', 'create', config, file), 'config create');
  ok(await L.m('service', 'create', '--name', 'pp', '--replicas', '2', '--network', 'app', '--timeout', '180s',
    '--config', `source=${config},target=/etc/nginx/nginx.conf`, '--publish', 'published=8090,target=80,proxy-protocol=v1', IMAGES.nginx1), 'create pp');
  ok(await L.m('service', 'create', '--name', 'pp2', '--network', 'app', '--timeout', '180s',
    '--config', `source=${config},target=/etc/nginx/nginx.conf`, '--publish', 'published=8091,target=80,proxy-protocol=v2', IMAGES.nginx1), 'create pp2');
}

/** One GET from namespace `netns` (`curl -s -m 2`, then `flags` such as `-6`): the body, or null (curl's exit code in `why`). */
export function curlGet(netns: string, url: string, flags: readonly string[] = []): { body: string | null; why: string } {
  const r = inNs(netns, ['curl', '-s', '-m', '2', ...flags, url], 5000);
  return { body: r.code === 0 ? r.stdout.trim() : null, why: `curl exit ${r.code} ${r.stderr.trim().slice(0, 120)}` };
}

/**
 * Waits (30 s, a round every 200 ms) until one round of 12 requests (`ask`: a body, or null when it failed)
 * was answered by `tasks` distinct tasks (the body's text after ` on `); returns them.
 */
export async function tasksAnswering(what: string, ask: () => string | null, tasks: number): Promise<Set<string>> {
  const { value } = await waitFor(what, () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const b = ask();
      if (b) seen.add(b.split(' on ')[1]!);
    }
    return seen.size === tasks && seen;
  }, 30_000, 200);
  return value;
}

/** Waits (20 s, every 500 ms) until the service's log (`logs`: its whole text) has a line containing `marker`; returns those lines. */
export async function logLinesWith(what: string, logs: () => Promise<string>, marker: string): Promise<string[]> {
  const { value } = await waitFor(what, async () => {
    const out = (await logs()).split('\n').filter((l) => l.includes(marker));
    return out.length > 0 && out;
  }, 20_000, 500);
  return value;
}
