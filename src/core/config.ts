/**
 * The agent's typed, validated configuration. One schema; units in names; every
 * default documented. Subsystems (gossip, overlay, lb, dns) own their own presets
 * and are referenced here by preset name plus overrides.
 */
import { z } from 'zod';
import { MeshError } from './errors.js';
import { isUnderlayIp, parseHostPort } from './hostport.js';
import { canonicalIp6, isIp6 } from './ipam/addr6.js';

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;
export const nodeNameSchema = z.string().regex(NAME_RE, 'must be a DNS label of at most 32 chars: [a-z0-9-]');
const ipv4Re = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
export const ipv4Schema = z.string().regex(ipv4Re, 'must be an IPv4 address');
/** IPV4:PORT (DNS upstreams: the forwarder's sockets are IPv4). */
export const ipv4HostPortSchema = z.string().refine((s) => {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  return !!m && ipv4Re.test(m[1]!) && Number(m[2]) > 0 && Number(m[2]) < 65536;
}, 'must be IPV4:PORT');
/** IPV4:PORT or [IPV6]:PORT (core/hostport.ts; an IPv6 underlay's seeds are bracketed). */
export const hostPortSchema = z.string().refine((s) => {
  try {
    return isUnderlayIp(parseHostPort(s).host);
  } catch {
    return false;
  }
}, 'must be IPV4:PORT or [IPV6]:PORT');
/** An IPv4 or IPv6 underlay address; IPv6 stored canonical (the VXLAN guard's set prints it so). */
export const underlayIpSchema = z.string().refine(isUnderlayIp, 'must be an IPv4 or IPv6 address')
  .transform((s) => (isIp6(s) ? canonicalIp6(s) : s));

export const agentConfigSchema = z.object({
  /** Node name, unique in the cluster; also the gossip member name. */
  nodeName: nodeNameSchema,
  /**
   * Underlay address other nodes reach us on (gossip, VXLAN), IPv4 or IPv6. An IPv6 one makes an IPv6
   * underlay: gossip on [addr]:port, VXLAN over IPv6 (70 bytes of overhead, not 50), the guard's IPv6 set.
   */
  advertiseAddr: underlayIpSchema,
  /** Unix socket for the control API (dockerd-style). */
  controlSocket: z.string().min(1).default('/run/meshd/meshd.sock'),
  /** Directory for state that must survive restarts (keyring, certificates, store). */
  dataDir: z.string().min(1).default('/var/lib/meshd'),
  /** Least level logged (pino JSON lines on stdout; under systemd the journal, with each line's priority). */
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Lab name when the agent runs inside a lab host namespace (names carry the prefix). */
  lab: z.string().optional(),
  /**
   * Prefix of every kernel object and namespace the agent creates (`<prefix>t-<task>`, …). `meshd-` on a
   * host; a lab gives each node its own (`mlab-<lab>-<node>-`) so that `lab down` finds everything.
   */
  objectPrefix: z.string().regex(/^[a-z0-9-]{1,40}$/, 'must be 1–40 chars of [a-z0-9-]').default('meshd-'),
  gossip: z
    .object({
      /** `lan` (memberlist's LAN defaults, the reference), `wan`, or `local` (fast, for labs/tests). */
      preset: z.enum(['lan', 'wan', 'local']).default('lan'),
      /** UDP and TCP port for gossip (memberlist's default 7946, same as Docker's). */
      bindPort: z.number().int().min(1).max(65535).default(7946),
      /** Addresses (IPV4:PORT) of members to join at start; retried until one answers. */
      seeds: z.array(hostPortSchema).max(64).default([]),
      /** Cluster name, bound into encrypted packets as associated data. */
      clusterName: z.string().min(1).max(64).default('meshd'),
      /**
       * File with base64 AES-256 keys, one per line, the first one primary. Gossip is encrypted
       * when a keyring exists (this file, or the keyring persisted in dataDir after key changes).
       */
      keyFile: z.string().min(1).optional(),
      /**
       * Allow plain-text gossip on a node of a cluster. false: such a node never speaks or accepts
       * plain text (`cluster init` makes a key, `cluster join` hands it out). true: logged as a
       * warning at every start. Outside a cluster, without a key, gossip is plain text as before.
       */
      insecure: z.boolean().default(false),
      /** Per-parameter overrides of the preset (validated by the gossip config). */
      overrides: z.record(z.string(), z.number()).default({}),
    })
    .strict()
    .default({}),
  /** Embedded DNS (127.0.0.11 in every task namespace). Every default below says why. */
  dns: z
    .object({
      /**
       * TTL of our records, s. 5: answers come from an in-memory table, so asking again is cheap, and a
       * short TTL bounds how long a caching client keeps a dead task's address to about the gossip
       * propagation time (Docker's fixed 600 s is moby#30029). 0 = clients must not cache.
       */
      ttlSeconds: z.number().int().min(0).max(86_400).default(5),
      /**
       * Upstream resolvers (IPV4:PORT) for names that are not ours. Absent: the host's resolv.conf as the
       * agent sees it, which is what containers would have used without us.
       */
      upstreams: z.array(ipv4HostPortSchema).min(1).max(8).optional(),
      /**
       * The resolv.conf upstreams are read from when `upstreams` is absent. /etc/resolv.conf on a host; a lab
       * agent (which shares the machine's mount namespace) is given iproute2's per-namespace file.
       */
      resolvConf: z.string().min(1).default('/etc/resolv.conf'),
      /** Total budget per forwarded query, ms. 3000: under glibc's 5 s so clients see SERVFAIL, not a timeout. */
      forwardTimeoutMs: z.number().int().min(100).max(30_000).default(3000),
      /**
       * Node-wide bound on queries waiting for an upstream. 256: a slow upstream can pile up at most this
       * much (≈ 256 × 1 KB) and local names never wait on it; split between worker processes (⌈n / workers⌉ each).
       */
      maxPendingForwards: z.number().int().min(1).max(65_536).default(256),
      /**
       * Processes serving the DNS sockets, the agent's own included. Absent: 1 up to 2 CPUs, else one per
       * CPU, at most 4 (defaultDnsWorkers: one process already serves > 20k qps; every process reading a
       * shared socket is woken per datagram, which on 2 CPUs cost more CPU per query and a worse p99 than
       * it gained; more than 4 adds memory and IPC for throughput no node's tasks need).
       */
      workers: z.number().int().min(1).max(64).optional(),
      /** Largest UDP reply and the EDNS size we advertise, bytes. 1232: DNS flag day 2020, no IP fragmentation. */
      maxUdpPayload: z.number().int().min(512).max(4096).default(1232),
      /** Bound on cached encoded answers per process. 10 000: every name of a large network, ≈ 1–5 MB. */
      cacheMaxEntries: z.number().int().min(0).max(1_000_000).default(10_000),
      /** Full rebuild of the DNS view from the gossip tables, ms. 10 000: a safety net; events do the real work. */
      resyncMs: z.number().int().min(1000).max(600_000).default(10_000),
    })
    .strict()
    .default({}),
  /** Load balancing (service VIPs, routing mesh, host-mode ports). */
  lb: z
    .object({
      /**
       * `auto`: IPVS when the kernel has ip_vs loaded (/proc/net/ip_vs), else nftables — both pass one
       * compliance suite, and IPVS is what Docker users know from `ipvsadm -Ln`. Force one to compare
       * them or when a host tool owns the other.
       */
      dataplane: z.enum(['auto', 'nftables', 'ipvs']).default('auto'),
      /**
       * The agent's userspace proxy for published ports with `proxy-protocol=v1|v2` (the kernel cannot add
       * the header): its bounds on this node, over all such ports.
       */
      proxyProtocol: z
        .object({
          /**
           * Connections through the proxy at once; one more is reset at accept (counted in
           * meshd_proxy_connections_total{result="rejected"}). Each holds two sockets: 4096 stays far below
           * the file limit Node raises itself to, and above what one node's tasks answer on this machine.
           */
          maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
          /**
           * A connection with no byte either way for this long is reset, ms (the upstream connect has the
           * same bound). 350 000: AWS NLB's fixed TCP idle timeout, what clients behind a cloud LB already
           * survive; long-lived idle protocols should keep alive below it.
           */
          idleTimeoutMs: z.number().int().min(1000).max(86_400_000).default(350_000),
        })
        .strict()
        .default({}),
    })
    .strict()
    .default({}),
  /** The manager's control loop (used only on nodes that run a manager). */
  manager: z
    .object({
      /**
       * How long a node must stay dead in gossip before the manager calls it down and reschedules its
       * tasks, ms. Gossip declares an unreachable AGENT dead, not its tasks: with the netns and docker
       * runtimes they keep running and keep serving through the kernel's overlay and LB state while the
       * agent restarts (upgrade, crash, OOM kill), and the agent adopts them when it is back. Without a
       * grace every agent restart would duplicate and then kill its tasks. Absent: by gossip preset —
       * `local` 5000 (an agent restarts in 1–3 s on a loaded lab machine), `lan` 10 000 and `wan` 30 000
       * (with memberlist's detection times this reschedules ~15 s / ~60 s after a node vanishes, close to
       * swarmkit's 3 × 5 s heartbeat grace). 0 = reschedule as soon as gossip says dead. A node that
       * leaves gracefully (`cluster leave`) is down at once.
       */
      nodeDownGraceMs: z.number().int().min(0).max(3_600_000).optional(),
      /**
       * How often the leader rotates the cluster's gossip key (install everywhere → use → remove), ms.
       * 43 200 000 (12 h, swarm's default); 0: only on `netctl cluster update --rotate-gossip-key`.
       * Read on the leader's node.
       */
      gossipKeyRotationMs: z.number().int().min(0).max(365 * 86_400_000).default(43_200_000),
    })
    .strict()
    .default({}),
  /** The overlay (VXLAN sandboxes per network). */
  overlay: z
    .object({
      /**
       * Automatic MTU (issue 19): probe the path MTU to every peer's underlay address (DF pings, binary
       * search) and build overlays without `--mtu` on the smallest path minus VXLAN's 50 bytes, so a
       * smaller path somewhere (a 1400-byte tunnel, a cloud fabric) refuses big packets at the sender
       * ("message too long") instead of black-holing them. false: the local link MTU only, as before.
       * A round is one niced process; a join probes only the new member, at a random point 1–5 s later
       * (a full round per join, in step on every agent, once stalled the gossip lab's event loops).
       */
      mtuProbe: z.boolean().default(true),
      /**
       * Background period of the full round (every peer), ms, jittered ±10 % per agent; full rounds also
       * run at start, and a member that joins is probed alone 1–5 s later. 300 000: paths rarely change,
       * and a round on a path smaller than the link costs a few seconds of pings.
       */
      mtuProbeIntervalMs: z.number().int().min(1000).max(86_400_000).default(300_000),
      /** Wait for a reply per probe try, ms (ping -W). 1000: far above a LAN round trip, yet a round stays short. */
      mtuProbeTimeoutMs: z.number().int().min(50).max(10_000).default(1000),
      /**
       * Consecutive rounds that must all allow a LARGER MTU before it is raised (a smaller one applies at
       * once). 2: one lucky or flapping probe never moves every interface up and down.
       */
      mtuRaiseAfterRounds: z.number().int().min(1).max(100).default(2),
    })
    .strict()
    .default({}),
  /** Draining a stopping task: its endpoint is withdrawn everywhere before it is stopped. */
  drain: z
    .object({
      /**
       * Longest wait for every live member to confirm (through the gossip table) that its LB and DNS
       * dropped the task, ms. 10 000: confirmations take ~0.5–2 s in a loaded lab (gossip propagation plus
       * one LB transaction); a member that has not answered in 10 s is more likely sick than slow, and a
       * stop (scale down, update) must not hang on it. After it the task stops anyway (logged, counted).
       */
      ackTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
    })
    .strict()
    .default({}),
  /**
   * The peer API (src/agent/peer): agent to agent over mutual TLS with the node certificates the cluster
   * issues, so `netctl` on one node can read another node's debug views (and, for manager nodes, run exec
   * and read task logs there). Served only once the node has a cluster identity, on `advertiseAddr:port`.
   */
  peer: z
    .object({
      /** false: this node serves no peer API (other nodes see it as unreachable); it can still ask peers. */
      enabled: z.boolean().default(true),
      /**
       * TCP port, the same on every node (a node reaches a peer at its gossip address and this port).
       * 2378: next to the manager API's 2377 (the swarm-style "cluster management" port operators already
       * open between nodes), clear of gossip 7946 (UDP+TCP), VXLAN 4789/udp and etcd's 2379/2380.
       */
      port: z.number().int().min(1).max(65535).default(2378),
      /** Connect + response-headers budget of one peer request, ms. 5000: a LAN peer answers in ms; a dead one must not hold a trace. */
      timeoutMs: z.number().int().min(100).max(120_000).default(5000),
    })
    .strict()
    .default({}),
  /** The `docker` runtime (src/adapters/runtime/docker.ts): one Engine API client per agent. */
  docker: z
    .object({
      /** Docker Engine API unix socket. */
      socketPath: z.string().min(1).default('/var/run/docker.sock'),
      /**
       * Local image of the per-task sandbox container that holds the task's network namespace (like
       * Kubernetes' pause); made at setup by native-scripts, never pulled. Its command must sleep
       * until SIGTERM and then exit 0.
       */
      sandboxImage: z.string().min(1).max(256).default('meshd/sandbox:local'),
      /** Local image (with busybox) that runs the built-in `whoami` in Docker. */
      whoamiImage: z.string().min(1).max(256).default('meshd-busybox:test'),
    })
    .strict()
    .default({}),
}).strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;

/** `manager.nodeDownGraceMs` when the config leaves it out (see the schema for why). */
export function defaultNodeDownGraceMs(preset: AgentConfig['gossip']['preset']): number {
  return preset === 'local' ? 5000 : preset === 'wan' ? 30_000 : 10_000;
}
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

/** Validates raw config (parsed JSON, CLI flags) and returns a typed config or a MESHD_BAD_CONFIG error. */
export function parseAgentConfig(raw: unknown): AgentConfig {
  const r = agentConfigSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0]!;
    const path = first.path.join('.') || '(root)';
    throw new MeshError('MESHD_BAD_CONFIG', `config ${path}: ${first.message}`, {
      issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return r.data;
}
