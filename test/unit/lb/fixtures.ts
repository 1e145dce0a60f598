/** Shared desired states for the lb unit and golden tests. */
import type { Backend, LbDesired } from '../../../src/core/lb/model.js';

export const b = (id: string, ip: string, state: Backend['state'] = 'active', local?: boolean): Backend => ({ id, ip, state, ...(local !== undefined ? { local } : {}) });

/** web: VIP with tcp/80 → 8080 over 3 tasks (one draining); dns: udp/53 + tcp/53; api: empty; rr: dnsrr. */
export function base(): LbDesired {
  return {
    services: [
      { id: 'svc-web', name: 'web', vip: '10.9.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends: [b('t3', '10.0.1.4'), b('t1', '10.0.1.2'), b('t2', '10.0.1.3', 'draining')] },
      { id: 'svc-dns', name: 'dns', vip: '10.9.0.11', ports: [{ proto: 'udp', port: 53, targetPort: 53 }, { proto: 'tcp', port: 53, targetPort: 53 }], backends: [b('d1', '10.0.1.20')] },
      { id: 'svc-api', name: 'api', vip: '10.9.0.12', ports: [{ proto: 'tcp', port: 443, targetPort: 8443 }], backends: [] },
      { id: 'svc-rr', name: 'rr', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends: [b('r1', '10.0.1.30')] },
    ],
    ingress: [
      { service: 'svc-web', publishedPort: 8080, proto: 'tcp', targetPort: 8080, policy: 'cluster', backends: [b('t1', '10.0.1.2'), b('t3', '10.0.1.4')] },
      { service: 'svc-web', publishedPort: 8081, proto: 'tcp', targetPort: 8080, policy: 'local', backends: [b('t1', '10.0.1.2', 'active', true), b('t3', '10.0.1.4', 'active', false)] },
    ],
  };
}

/** base() with one endpoint change on web: t2 finished draining and is gone, t4 added. */
export function changed(): LbDesired {
  const d = base();
  const web = d.services[0]!;
  web.backends = [b('t3', '10.0.1.4'), b('t1', '10.0.1.2'), b('t4', '10.0.1.5')];
  // api gets its first backend, dns loses its only one, a new service appears, the local publish goes.
  d.services[2]!.backends = [b('a1', '10.0.1.40')];
  d.services[1]!.backends = [];
  d.services.push({ id: 'svc-new', name: 'new', vip: '10.9.0.13', ports: [{ proto: 'tcp', port: 5000, targetPort: 5000 }], backends: [b('n1', '10.0.1.50')] });
  d.ingress = d.ingress.slice(0, 1);
  return d;
}

/**
 * A node's own namespace with `--publish mode=host,published=8080,target=80`: two local tasks of
 * `svc-h` (their overlay addresses, routed from the host) and a draining one; no VIPs there.
 */
export function hostMode(): LbDesired {
  return {
    services: [],
    ingress: [{ service: 'svc-h', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'local', mode: 'host', backends: [b('h2', '10.0.1.61', 'active', true), b('h1', '10.0.1.60', 'active', true), b('h3', '10.0.1.62', 'draining', true)] }],
  };
}

/**
 * Balancing choices (issue 19 §3): `rr` VIP over two tasks round-robin; `canary` VIP with a 90/10
 * split (the canary task at weight 10, the two stable ones at 45); a source-hash published port;
 * a published port with locality `node` (the local task only while it is active).
 */
export function balanced(): LbDesired {
  return {
    services: [
      { id: 'svc-rr', name: 'rr', vip: '10.9.0.20', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends: [b('r1', '10.0.2.1'), b('r2', '10.0.2.2')], lb: { algorithm: 'round-robin' } },
      { id: 'svc-can', name: 'canary', vip: '10.9.0.21', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends: [{ ...b('c1', '10.0.2.11'), weight: 45 }, { ...b('c2', '10.0.2.12'), weight: 45 }, { ...b('c3', '10.0.2.13'), weight: 10 }] },
    ],
    ingress: [
      { service: 'svc-sh', publishedPort: 9000, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [b('s1', '10.0.2.21'), b('s2', '10.0.2.22'), b('s3', '10.0.2.23')], lb: { algorithm: 'source-hash' } },
      { service: 'svc-loc', publishedPort: 9001, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [b('l1', '10.0.2.31', 'active', true), b('l2', '10.0.2.32', 'active', false), { ...b('l3', '10.0.2.33'), sameZone: true }], lb: { locality: 'node' } },
    ],
  };
}
