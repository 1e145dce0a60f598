/**
 * Which subsystems an agent runs, in start order. The one place where the agent's
 * parts are chosen; each subsystem gets its edges injected here.
 */
import { defaultNodeDownGraceMs, type AgentConfig } from '../core/config.js';
import type { TimerClock } from '../core/clock.js';
import type { Logger } from '../adapters/logger.js';
import type { Agent } from './agent.js';
import { GossipSubsystem } from './gossip/gossip.js';
import { applyKeyPolicy, KeyStore } from './gossip/keys.js';
import { ClusterGossipKeys } from './link/gossip-keys.js';
import { hasNodeIdentity } from '../adapters/pki/files.js';
import { join } from 'node:path';
import { ManagerLink } from './link/manager-link.js';
import { OverlaySubsystem } from './overlay/overlay.js';
import { WorkerSubsystem } from './worker/worker.js';
import { DnsSubsystem } from './dns/dns.js';
import { LbSubsystem } from './lb/lb.js';
import { createDataplane } from '../adapters/dataplane/detect.js';
import { MetricsSubsystem } from './metrics.js';
import { DrainAcker } from './drain/ack.js';
import { DrainWaiter } from './drain/wait.js';
import { ConvergenceReceipts } from './drain/convergence.js';
import { realExec } from '../adapters/exec.js';
import { describeNode } from '../adapters/node-describe.js';
import { cpus } from 'node:os';
import { defaultDnsWorkers } from '../core/dns/snapshot.js';
import { parseUpstream } from './dns/plan.js';
import { PeerSubsystem } from './peer/peer.js';
import { registerContainerRoutes } from './worker/container-routes.js';
import { PolicySubsystem } from './policy/policy.js';

export interface Subsystems {
  gossip: GossipSubsystem;
  overlay: OverlaySubsystem;
  worker: WorkerSubsystem;
  dns: DnsSubsystem;
  lb: LbSubsystem;
}


export function addSubsystems(agent: Agent, config: AgentConfig, clock: TimerClock, log: Logger): Subsystems {
  const keys = new KeyStore(config.dataDir, config.gossip.clusterName, config.gossip.keyFile);
  applyKeyPolicy(keys, { inCluster: hasNodeIdentity(join(config.dataDir, 'cluster')), insecure: config.gossip.insecure }, log);
  const gossip = new GossipSubsystem(config, clock, log.child({ sub: 'gossip' }), keys.cipher());
  agent.add({ name: 'keys', start: async () => undefined, stop: async () => undefined, routes: (r) => keys.routes(r) });
  agent.add(gossip);
  const prefix = config.objectPrefix;
  const exec = realExec;
  const overlay = new OverlaySubsystem({
    nodeName: config.nodeName, underlayIp: config.advertiseAddr, prefix, gossip, clock, log: log.child({ sub: 'overlay' }), exec,
    mtu: {
      probe: config.overlay.mtuProbe, probeIntervalMs: config.overlay.mtuProbeIntervalMs,
      probeTimeoutMs: config.overlay.mtuProbeTimeoutMs, raiseAfterRounds: config.overlay.mtuRaiseAfterRounds,
    },
  });
  // Confirmed drains: the worker waits for every member's ack (drain-wait), every node acks (drain-ack).
  const drainWait = new DrainWaiter({ nodeName: config.nodeName, gossip, clock, log: log.child({ sub: 'drain' }), timeoutMs: config.drain.ackTimeoutMs });
  const worker = new WorkerSubsystem({
    nodeName: config.nodeName, nodeIp: config.advertiseAddr, dataDir: config.dataDir, prefix, exec, clock,
    log: log.child({ sub: 'worker' }), gossip, overlay, drain: drainWait,
    dockerSocket: config.docker.socketPath, dockerSandboxImage: config.docker.sandboxImage, dockerWhoamiImage: config.docker.whoamiImage,
    // Secret/config payloads of a task, fetched over the manager link just before it starts (task-files.ts).
    taskFiles: (taskId: string): Promise<unknown> => link.taskFiles(taskId),
    // 127.0.0.11 answers before the task's process starts (its first lookup must not race the bind).
    beforeApp: async (netns) => {
      if (!(await dns.ensureSandbox(netns))) log.warn({ netns }, 'dns not bound in the task namespace before start; the background scan retries');
      // Policies between services (issue #19): the filter is in place before the application runs.
      await policy.prepare(netns);
    },
    lbSettled: (): Promise<void> => lb.idle(),
  });
  // Automatic MTU changed: the overlay re-programs its sandboxes; running tasks' interfaces follow.
  overlay.onMtuChange(() => {
    worker.retuneMtu().catch((err: unknown) => log.error({ err }, 'running tasks could not follow the new overlay MTU'));
  });
  agent.add(overlay);
  agent.add(worker);
  // Policies between services (issue #19): allow-from / default-deny filters in local task namespaces.
  const policy = new PolicySubsystem({
    nodeName: config.nodeName, clock, log: log.child({ sub: 'policy' }), exec,
    onGossip: (l) => gossip.onEvent(l), networks: () => gossip.core.networks(), tableEntries: (net, table) => gossip.core.tableEntries(net, table),
    assignments: () => worker.assignments(), onAssignments: (fn) => worker.onAssignments(fn),
    taskNetns: (id) => worker.tasksView().find((t) => t.id === id)?.netns,
  });
  agent.add(policy);
  const dns = new DnsSubsystem({
    nodeName: config.nodeName, resolvConfPath: config.dns.resolvConf, prefix, gossip, clock, log: log.child({ sub: 'dns' }), exec,
    assignedNetworks: (shortId) => worker.tasksView().find((t) => t.id.slice(0, 12) === shortId)?.networks,
    ttlSec: config.dns.ttlSeconds, forwardTimeoutMs: config.dns.forwardTimeoutMs, maxPendingForwards: config.dns.maxPendingForwards,
    maxUdpPayload: config.dns.maxUdpPayload, cacheMaxEntries: config.dns.cacheMaxEntries, resyncMs: config.dns.resyncMs,
    workers: config.dns.workers ?? defaultDnsWorkers(cpus().length),
    ...(config.dns.upstreams ? { upstreams: config.dns.upstreams.map(parseUpstream) } : {}),
  });
  agent.add(dns);
  // Load balancer: VIPs in local task namespaces, routing mesh (ingress sandbox + host DNAT).
  const lb = new LbSubsystem({
    nodeName: config.nodeName, underlayIp: config.advertiseAddr, prefix, dataDir: config.dataDir, gossip, overlay, clock,
    log: log.child({ sub: 'lb' }), exec, taskNetns: (id) => worker.tasksView().find((t) => t.id === id)?.netns,
    onSettled: () => (drainAck.kick(), convergence.kick()),
    dataplane: createDataplane(config.lb.dataplane, { exec }),
    proxyProtocol: config.lb.proxyProtocol,
  });
  agent.add(lb);
  const drainAck = new DrainAcker({
    nodeName: config.nodeName, gossip, clock, log: log.child({ sub: 'drain' }),
    lbApplied: (net, task) => lb.drained(net, task), dnsServes: (net, task) => dns.servesTask(net, task),
  });
  agent.add(drainAck);
  // Convergence receipts: every node acks additions and changes once its LB and DNS carry them.
  const convergence = new ConvergenceReceipts({
    nodeName: config.nodeName, gossip, clock, log: log.child({ sub: 'convergence' }),
    lbPrograms: (rec) => lb.programs(rec), dnsRecord: (net, task) => dns.heldRecord(net, task),
  });
  agent.add(convergence);
  agent.add(drainWait);
  // Cluster link (init/join/leave, dispatcher polling, manager proxy); after the worker it feeds.
  const link = new ManagerLink({ nodeName: config.nodeName, advertiseAddr: config.advertiseAddr, dataDir: config.dataDir, clock, log: log.child({ sub: 'cluster' }), gossip, worker, controlSocket: config.controlSocket,
    nodeDownGraceMs: config.manager.nodeDownGraceMs ?? defaultNodeDownGraceMs(config.gossip.preset),
    // The node's runtimes ride on its status reports (docker: the engine answers on its socket).
    // Ask the engine this agent's runtime uses (docker.socketPath), not dockerd's default socket: a
    // node with its own engine must report what THAT engine has.
    describeNode: () => describeNode({ socketPath: config.docker.socketPath }),
    gossipKeys: new ClusterGossipKeys(keys, config.gossip.insecure, log.child({ sub: 'cluster' }), config.manager.gossipKeyRotationMs) });
  agent.add(link);
  // Standalone containers (`netctl run`): the worker runs them, the manager grants their network attachments.
  agent.add({ name: 'containers', start: async () => undefined, stop: async () => undefined, routes: (r) => registerContainerRoutes(r, worker, (m, p, b) => link.managerCall(m, p, b), log.child({ sub: 'containers' })) });
  // Agent-to-agent debugging over mTLS (cross-node netctl through one local agent): src/agent/peer.
  agent.add(new PeerSubsystem({ nodeName: config.nodeName, advertiseAddr: config.advertiseAddr, dataDir: config.dataDir, ...config.peer, members: () => gossip.core.members(), fetchRevocations: () => link.managerCall('GET', '/v1/revocations'), log: log.child({ sub: 'peer' }) }));
  // Prometheus metrics at GET /metrics, read from the subsystems at scrape time.
  agent.add(new MetricsSubsystem(config.nodeName, { gossip: () => gossip.core, dns: () => dns.server.stats(), lb: () => lb.stats(), proxy: () => lb.ingress.proxies.stats, drain: () => drainWait.counters, convergence: () => convergence.histogram }));
  return { gossip, overlay, worker, dns, lb };
}
