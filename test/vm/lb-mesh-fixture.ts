/**
 * The 3-node load-balancing lab's workload, as data: network `app`, service `web` (VIP, published
 * 8080 in ingress mode), a client task `probe` on n1 and service `loc` (published 8081 with
 * policy local, one task on n2). Written for the IPVS mesh test that runs inside the VM
 * (test/vm/lb-ipvs-mesh.test.ts) with the same names and addresses as the nftables lab test
 * (test/integration/lb-agent/lb-agent.test.ts), so both can share it. Pure: no I/O.
 */
import type { AssignmentInput } from '../../src/core/assignments.js';
import { macFromIp } from '../../src/core/ipam/addr.js';

export const APP = { id: 'lbnet00001', name: 'app', vni: 4201, subnet: '10.40.0.0/24', gateway: '10.40.0.1' };
/** VIP of service `web` on `app`. */
export const VIP = '10.40.0.2';
export const NODES = ['n1', 'n2', 'n3'] as const;

/** A whoami task on `app`; `web` is VIP mode (published 8080 when `published`), anything else dnsrr. */
export function task(id: string, name: string, service: string, ip: string, published: boolean): AssignmentInput {
  return {
    task: { id, name, serviceId: `svc${service}`, serviceName: service, image: 'whoami' },
    desiredState: 'running',
    endpointMode: service === 'web' ? 'vip' : 'dnsrr',
    attachments: [{ network: APP, ip, prefix: 24, mac: macFromIp(ip), vip: service === 'web' ? VIP : null }],
    ports: published ? [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress' }] : [{ proto: 'tcp', target: 80 }],
  };
}

/** A client task on `app`, always on n1: the VIP is tried from its namespace. */
export const PROBE = task('probe1aaaaaa', 'probe.1', 'probe', '10.40.0.50', false);

/** web task id → [node, app ip, ingress ip]; web.1-3 are the initial replicas, web.4-5 scale-up ones. */
export const WEB: Record<string, [string, string, string]> = {
  web1aaaaaaaa: ['n1', '10.40.0.11', '10.255.0.11'],
  web2aaaaaaaa: ['n2', '10.40.0.12', '10.255.0.12'],
  web3aaaaaaaa: ['n3', '10.40.0.13', '10.255.0.13'],
  web4aaaaaaaa: ['n2', '10.40.0.14', '10.255.0.14'],
  web5aaaaaaaa: ['n3', '10.40.0.15', '10.255.0.15'],
};
export const webTask = (id: string): AssignmentInput => task(id, `web.${id[3]}`, 'web', WEB[id]![1], true);

/** Service `loc`: one task on n2, published 8081 with policy local (client address preserved). */
export const LOC: AssignmentInput = {
  task: { id: 'loc1aaaaaaaa', name: 'loc.1', serviceId: 'svcloc', serviceName: 'loc', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: APP, ip: '10.40.0.31', prefix: 24, mac: macFromIp('10.40.0.31'), vip: '10.40.0.3' }],
  ports: [{ proto: 'tcp', target: 80, published: 8081, mode: 'ingress', policy: 'local' }],
};
export const LOC_NODE = 'n2';
export const LOC_INGRESS_IP = '10.255.0.31';

/** The assignments of one node: the probe on n1, its web tasks among `webIds`, `loc` on n2 when `withLoc`. */
export function nodeAssignments(node: string, webIds: readonly string[], withLoc: boolean): AssignmentInput[] {
  return [
    ...(node === 'n1' ? [PROBE] : []),
    ...webIds.filter((id) => WEB[id]![0] === node).map(webTask),
    ...(withLoc && node === LOC_NODE ? [LOC] : []),
  ];
}

/** Ingress attachments (task id → ingress ip) a node needs before its assignments. */
export function nodeIngress(node: string, webIds: readonly string[], withLoc: boolean): Array<[string, string]> {
  return [
    ...webIds.filter((id) => WEB[id]![0] === node).map((id): [string, string] => [id, WEB[id]![2]]),
    ...(withLoc && node === LOC_NODE ? [[LOC.task.id, LOC_INGRESS_IP] as [string, string]] : []),
  ];
}

/** Distinct values, sorted. */
export const distinct = (xs: readonly string[]): string[] => [...new Set(xs)].sort();
