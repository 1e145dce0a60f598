/**
 * The manager service: cluster identity (root CA, join tokens), node membership and the
 * HTTPS API over which nodes join, renew certificates and (for managers) administer the
 * cluster. State lives in a Store (sqlite by default, etcd for several managers); the CA
 * key is kept in the store so any manager of the cluster can sign.
 *
 * Several managers (etcd): every manager serves the API and answers reads from the shared
 * store; only the elected leader (Leadership, set with setLeadership) accepts writes — a
 * follower refuses any non-GET manager/node route except certificate renewal with 503
 * MESHD_NOT_LEADER, details `{ reason: 'not-leader', leader: 'host:port' | null, leaderId }`,
 * so a client retries at the leader (the agent's manager link does this by itself). Only
 * the leader's control plane schedules, orchestrates and changes task state, so two
 * managers never write the control state concurrently.
 *
 * Fencing: a leader whose lease expired may not have noticed yet, so the leader's writes
 * (leaderTxn, and the control plane's commits) carry the term's fence (LeaderFence: etcd
 * commits them only while this manager's election key is the one it was elected with).
 * A refused write (MESHD_NOT_LEADER, reason `deposed`) is dropped and the manager steps
 * down at once (stepDown): it stops scheduling and campaigns again.
 *
 * Trust: the root CA key sits in the store sealed with the cluster data key (sealed-ca.ts,
 * data-key.ts): reading the store alone no longer lets anyone issue certificates; the key file
 * is handed only to managers (join / renew answers). See store-config.ts for the etcd endpoints.
 *
 * No process globals: time (`now`), the store and the logger are passed in; the agent
 * composes it (src/manager/index.ts). Other routes (services, networks, tasks) are added
 * with `route()` before `listen()`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/hostport.js';
import {
  formatJoinToken, grantedRole, newTokenSecrets, parseTokenSecrets, roleForToken, rotateSecret,
  SECRET_BYTES, type JoinRole, type TokenSecrets,
} from '../core/tokens/tokens.js';
import { CertificateAuthority, type PeerIdentity } from '../adapters/pki/ca.js';
import { checkGossipKeys } from './gossip-keys.js';
import { ClusterKeyring, sealKeyring } from './cluster-keyring.js';
import { NodeRecords } from './node-records.js';
import type { Sealer } from '../adapters/pki/seal.js';
import { createDataKey } from './data-key.js';
import { openClusterSecrets, sealCaRecord } from './sealed-ca.js';
import { createNodeKeyAndCsr, randomSecretBytes, secretEquals } from '../adapters/pki/crypto.js';
import { hasNodeIdentity, loadNodeIdentity, saveNodeIdentity, type NodeIdentity } from '../adapters/pki/files.js';
import { RevocationList } from '../adapters/pki/revocation.js';
import type { LeaderFence, Store, TxnOp } from '../adapters/store/store.js';
import { addCoreRoutes } from './core-routes.js';
import { ManagerApi, type Access, type ManagerHandler } from './server.js';
import { notLeaderError, soleLeadership, stepDownIfDeposed, type LeaderInfo, type Leadership } from './leadership.js';
import { shareableStore, type StoreConfig } from './store-config.js';
import {
  joinRequestSchema, KEYS, managerStatusOf, parseBody, renewRequestSchema,
  type ClusterInfo, type ManagedNode, type ManagerStatus,
} from './model.js';

/** Writes a follower still serves: they touch one node record with compare-and-put. */
const FOLLOWER_WRITES = new Set(['/v1/certs/renew']);

/** One manager of the cluster as `GET /v1/managers` lists it. */
export interface ManagerEntry {
  id: string;
  hostname: string;
  /** API address host:port. */
  addr: string;
  status: ManagerStatus;
}

/** Swarm's manager port. */
export const DEFAULT_MANAGER_PORT = 2377;

export interface ManagerOptions {
  store: Store;
  /** This manager's own node identity (its certificate serves TLS). */
  identity: NodeIdentity;
  /** Wall clock (certificate validity is wall-clock time). */
  now?: () => Date;
  /** Validity of issued node certificates (ms); default 90 days. */
  certValidityMs?: number;
  onInternalError?: (e: MeshError) => void;
  /** The store this manager runs on; etcd's is handed to managers that join. Default sqlite. */
  storeConfig?: StoreConfig;
}

export interface InitClusterOptions {
  dataDir: string;
  store: Store;
  nodeName: string;
  /** IP the other nodes reach this manager at (put in its certificate SAN). */
  advertiseAddr: string;
  port?: number;
  now?: () => Date;
  certValidityMs?: number;
  onInternalError?: (e: MeshError) => void;
  storeConfig?: StoreConfig;
  /** The cluster's gossip keyring (base64, primary first); stored with the cluster (gossip-keys.ts). */
  gossipKeys?: string[] | undefined;
}

/** A fresh node id: 24 lowercase hex chars (96 random bits). */
export function newNodeId(): string {
  return randomBytes(12).toString('hex');
}

export class Manager {
  readonly api: ManagerApi;
  /** The cluster's gossip keyring (cluster-keyring.ts). */
  readonly keyring: ClusterKeyring;
  /** The node records (node-records.ts). */
  readonly nodes: NodeRecords;
  private readonly now: () => Date;
  private leadership: Leadership;

  private constructor(
    readonly store: Store,
    readonly ca: CertificateAuthority,
    /** Seals what the store must not hold in plain text (the cluster data key; never logged). */
    readonly sealer: Sealer,
    private ident: NodeIdentity,
    private readonly opts: ManagerOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
    this.leadership = soleLeadership({ nodeId: ident.nodeId, addr: undefined });
    this.keyring = new ClusterKeyring(this, this.now);
    this.nodes = new NodeRecords(this, this.now, shareableStore(opts.storeConfig ?? { kind: 'sqlite' }) !== undefined);
    this.api = new ManagerApi((der) => this.verifyPeer(der), opts.onInternalError);
    this.api.setGuard((method, path, access) => this.leaderGuard(method, path, access));
    addCoreRoutes(this);
  }

  /** Who leads (default: this manager alone). Set before the API serves writes. */
  setLeadership(l: Leadership): void {
    this.leadership = l;
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  /** The elected leader (store read); undefined while none is elected. */
  leader(): Promise<LeaderInfo | undefined> {
    return this.leadership.leader();
  }

  /** A follower refuses writes, naming the leader (see the file comment). */
  private async leaderGuard(method: string, path: string, access: Access): Promise<void> {
    if (access === 'public' || method === 'GET' || method === 'HEAD' || FOLLOWER_WRITES.has(path) || this.leadership.isLeader()) return;
    throw await this.notLeaderError(`${method} ${path}`);
  }

  /** MESHD_NOT_LEADER naming the current leader (hostname and address), for a refused `what`. */
  notLeaderError(what: string): Promise<MeshError> {
    return notLeaderError(this.leadership, this.store, this.ident.nodeId, what);
  }

  /** The fence of the current leadership term (undefined: a sole manager, or not leading). */
  fence(): LeaderFence | undefined {
    return this.leadership.fence();
  }

  /** A fenced write was refused (MESHD_NOT_LEADER, reason deposed): step down if it was this term's. */
  deposedBy(e: unknown): void {
    stepDownIfDeposed(this.leadership, e);
  }

  /**
   * A leader-only write: refused with MESHD_NOT_LEADER unless this manager leads, and
   * fenced with the term (a deposed leader's write never lands; it steps down).
   */
  async leaderTxn(ops: TxnOp[]): Promise<number> {
    if (!this.leadership.isLeader()) throw await this.notLeaderError('this write');
    try {
      return await this.store.txn(ops, { fence: this.leadership.fence() });
    } catch (e) {
      this.deposedBy(e);
      throw e;
    }
  }

  /**
   * Records this manager's API address in its node record (other nodes find managers there).
   * The leader may write the same record at the same moment (node state from gossip, e.g.
   * when this restarted node reappears), so a revision conflict is retried on a fresh read.
   */
  async publishManagerAddr(addr: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { node, revision } = await this.nodes.find(this.ident.nodeId);
      if (node.managerAddr === addr) return;
      try {
        await this.store.compareAndPut(KEYS.node(node.id), { ...node, managerAddr: addr, updatedAt: this.now().getTime() }, revision);
        return;
      } catch (e) {
        if (!(e instanceof MeshError && e.code === 'MESHD_STORE_CONFLICT') || attempt >= 10) throw e;
      }
    }
  }

  /**
   * Every manager of the cluster, the leader first. If the election cannot be read the list
   * shows no leader (a view, not a decision); a store that is down fails the list read itself.
   */
  async listManagers(): Promise<ManagerEntry[]> {
    const leaderId = (await this.leadership.leader().catch(() => undefined))?.nodeId;
    const rank = { leader: 0, reachable: 1, unreachable: 2 } as const;
    return (await this.store.list<ManagedNode>(KEYS.nodes)).map((kv) => kv.value).filter((n) => n.role === 'manager')
      .map((n) => ({ id: n.id, hostname: n.hostname, addr: n.managerAddr ?? `${n.addr.includes(':') ? `[${n.addr}]` : n.addr}:${DEFAULT_MANAGER_PORT}`, status: managerStatusOf(n, leaderId)! }))
      .sort((a, b) => rank[a.status] - rank[b.status] || a.hostname.localeCompare(b.hostname));
  }

  /**
   * Creates a cluster: root CA, join tokens, this node as its first manager (identity
   * files in `dataDir`). Refuses with MESHD_CLUSTER_EXISTS if the store or dataDir already
   * hold one — a cluster is never overwritten.
   */
  static async initCluster(o: InitClusterOptions): Promise<Manager> {
    if (hasNodeIdentity(o.dataDir)) throw new MeshError('MESHD_CLUSTER_EXISTS', `${o.dataDir} already holds a node identity: leave the cluster first`);
    if (await o.store.get(KEYS.ca)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'the store already holds a cluster');
    const now = (o.now ?? (() => new Date()))();
    const ca = await CertificateAuthority.create({ now });
    const tokens = newTokenSecrets(randomSecretBytes(SECRET_BYTES), randomSecretBytes(SECRET_BYTES));
    const nodeId = newNodeId();
    const { keyPem, csrPem } = await createNodeKeyAndCsr(o.nodeName);
    const issued = await ca.issue({ csrPem, nodeId, role: 'manager', sans: [o.advertiseAddr, '127.0.0.1'], now, validityMs: o.certValidityMs });
    const node: ManagedNode = {
      id: nodeId, hostname: o.nodeName, role: 'manager', availability: 'active', state: 'ready', labels: {},
      resources: { cpuMilli: 0, memoryBytes: 0 }, addr: o.advertiseAddr, certSerial: issued.serial,
      certNotAfter: issued.notAfter.getTime(), createdAt: now.getTime(), updatedAt: now.getTime(),
      managerAddr: formatHostPort(o.advertiseAddr, o.port ?? DEFAULT_MANAGER_PORT),
    };
    const info: ClusterInfo = { id: newNodeId(), createdAt: now.getTime(), caDigest: ca.digest };
    const sealer = createDataKey(o.dataDir);
    await o.store.txn([
      { op: 'put', key: KEYS.ca, value: sealCaRecord(sealer, ca.certPem, await ca.keyPem()), ifRevision: 0 },
      { op: 'put', key: KEYS.tokens, value: tokens, ifRevision: 0 },
      { op: 'put', key: KEYS.info, value: info, ifRevision: 0 },
      { op: 'put', key: KEYS.node(nodeId), value: node, ifRevision: 0 },
      ...(o.gossipKeys ? [{ op: 'put' as const, key: KEYS.gossipKeys, value: sealKeyring(sealer, { keys: checkGossipKeys(o.gossipKeys, 'init') }), ifRevision: 0 }] : []),
    ]);
    const identity: NodeIdentity = {
      nodeId, role: 'manager', managerAddr: formatHostPort(o.advertiseAddr, o.port ?? DEFAULT_MANAGER_PORT),
      caPem: ca.certPem, certPem: issued.certPem, keyPem,
    };
    saveNodeIdentity(o.dataDir, identity);
    return new Manager(o.store, ca, sealer, identity, { store: o.store, identity, now: o.now, certValidityMs: o.certValidityMs, onInternalError: o.onInternalError, storeConfig: o.storeConfig });
  }

  /** Opens the manager of an existing cluster (restart): CA from the store, identity from dataDir. */
  static async open(o: { dataDir: string; store: Store; now?: () => Date; certValidityMs?: number; onInternalError?: (e: MeshError) => void; storeConfig?: StoreConfig; onMigrated?: (what: string[]) => void }): Promise<Manager> {
    if (!existsSync(o.dataDir)) throw new MeshError('MESHD_NOT_FOUND', `data directory ${o.dataDir} does not exist: initialize or join a cluster first`);
    const identity = loadNodeIdentity(o.dataDir);
    if (identity.role !== 'manager') throw new MeshError('MESHD_FORBIDDEN', `node ${identity.nodeId} is a ${identity.role}, not a manager`);
    const stored = await openClusterSecrets(o.store, o.dataDir, o.onMigrated);
    const ca = await CertificateAuthority.load(stored.certPem, stored.keyPem);
    if (ca.certPem.trim() !== identity.caPem.trim()) throw new MeshError('MESHD_CA_MISMATCH', 'the store belongs to another cluster than this node identity');
    return new Manager(o.store, ca, stored.sealer, identity, { store: o.store, identity, now: o.now, certValidityMs: o.certValidityMs, onInternalError: o.onInternalError, storeConfig: o.storeConfig });
  }

  /** This manager's own node identity (its certificate serves TLS). */
  get identity(): NodeIdentity {
    return this.ident;
  }

  /**
   * Renews this manager's own certificate with a new key (signed locally), saves it in
   * `dataDir` and serves it on new connections. The agent calls it when
   * certificateRenewalDue() says so.
   */
  async renewOwnCertificate(dataDir: string, managerAddr?: string): Promise<NodeIdentity> {
    const { node, revision } = await this.nodes.find(this.ident.nodeId);
    const { keyPem, csrPem } = await createNodeKeyAndCsr(node.hostname);
    const now = this.now();
    const issued = await this.ca.issue({ csrPem, nodeId: node.id, role: 'manager', sans: node.addr ? [node.addr, '127.0.0.1'] : ['127.0.0.1'], now, validityMs: this.opts.certValidityMs });
    await this.store.compareAndPut(KEYS.node(node.id), { ...node, certSerial: issued.serial, certNotAfter: issued.notAfter.getTime(), updatedAt: now.getTime() }, revision);
    this.ident = { ...this.ident, certPem: issued.certPem, keyPem, managerAddr: managerAddr ?? this.ident.managerAddr };
    saveNodeIdentity(dataDir, this.ident);
    this.api.updateTls({ caPem: this.ca.certPem, certPem: this.ident.certPem, keyPem: this.ident.keyPem });
    return this.ident;
  }

  /** Rewrites the manager address saved in `dataDir` (e.g. once an ephemeral port is bound). */
  setManagerAddr(dataDir: string, managerAddr: string): void {
    this.ident = { ...this.ident, managerAddr };
    saveNodeIdentity(dataDir, this.ident);
  }

  /** Adds an API route (services, networks, tasks, ...). */
  route(method: string, pattern: string, access: Access, handler: ManagerHandler): this {
    this.api.route(method, pattern, access, handler);
    return this;
  }

  listen(host: string, port = DEFAULT_MANAGER_PORT): Promise<{ host: string; port: number }> {
    return this.api.listen({ caPem: this.ca.certPem, certPem: this.ident.certPem, keyPem: this.ident.keyPem }, host, port);
  }

  close(): Promise<void> {
    return this.api.close();
  }

  // ---- identity checks -------------------------------------------------------------

  /** A caller's certificate: ours, valid, not revoked, and its node still a member. */
  async verifyPeer(der: Uint8Array | undefined): Promise<PeerIdentity> {
    const revoked = await this.revocations();
    const peer = await this.ca.verifyPeer(der, this.now(), revoked.list);
    if (!(await this.store.get(KEYS.node(peer.nodeId)))) {
      throw new MeshError('MESHD_CERT_REJECTED', `node ${peer.nodeId} is no longer a member of this cluster`, { reason: 'revoked', nodeId: peer.nodeId });
    }
    return peer;
  }

  /**
   * The revocation list as nodes need it (GET /v1/revocations): entries whose certificates have
   * all expired are left out (TLS refuses those anyway), so the answer stays small.
   */
  async listRevocations(): Promise<{ entries: ReturnType<RevocationList['toJSON']> }> {
    const { list } = await this.revocations();
    list.prune(this.now().getTime());
    return { entries: list.toJSON() };
  }

  private async revocations(): Promise<{ list: RevocationList; revision: number }> {
    const kv = await this.store.get(KEYS.revocations);
    return { list: RevocationList.fromJSON(kv?.value), revision: kv?.revision ?? 0 };
  }

  // ---- tokens ----------------------------------------------------------------------

  private async secrets(): Promise<{ secrets: TokenSecrets; revision: number }> {
    const kv = await this.store.get(KEYS.tokens);
    if (!kv) throw new MeshError('MESHD_STORE_CORRUPT', 'the store holds no join tokens');
    return { secrets: parseTokenSecrets(kv.value), revision: kv.revision };
  }

  async joinToken(role: JoinRole): Promise<string> {
    return formatJoinToken(this.ca.digest, (await this.secrets()).secrets[role]);
  }

  /** Replaces `role`'s secret: old tokens of that role stop working, members are unaffected. */
  async rotateJoinToken(role: JoinRole): Promise<string> {
    const { secrets, revision } = await this.secrets();
    const next = rotateSecret(secrets, role, randomSecretBytes(SECRET_BYTES));
    await this.leaderTxn([{ op: 'put', key: KEYS.tokens, value: next, ifRevision: revision }]);
    return formatJoinToken(this.ca.digest, next[role]);
  }

  // ---- membership ------------------------------------------------------------------

  /** Admits a node: token → role, CSR → certificate, record in the store. */
  async join(body: unknown, remoteAddress: string | undefined): Promise<{ nodeId: string; role: JoinRole; certPem: string; caPem: string; store?: StoreConfig; gossipKeys?: string[]; dataKey?: string }> {
    const r = parseBody(joinRequestSchema, 'join request', body);
    const role = grantedRole(roleForToken(r.token, this.ca.digest, (await this.secrets()).secrets, secretEquals), r.role);
    const shared = role === 'manager' ? shareableStore(this.opts.storeConfig ?? { kind: 'sqlite' }) : undefined;
    if (role === 'manager' && r.hostManager && !shared) {
      throw new MeshError('MESHD_BAD_ARGUMENT', 'this cluster keeps its state in the embedded store of one manager: a second manager needs a shared etcd store (cluster init --store etcd); join with a worker token instead', { reason: 'store-not-shared' });
    }
    const addr = r.addr ?? normalizeRemote(remoteAddress);
    const now = this.now();
    const nodeId = newNodeId();
    const issued = await this.ca.issue({ csrPem: r.csr, nodeId, role, sans: addr ? [addr] : [], now, validityMs: this.opts.certValidityMs });
    const node: ManagedNode = {
      id: nodeId, hostname: r.name, role, availability: 'active', state: 'ready', labels: {},
      resources: { cpuMilli: 0, memoryBytes: 0 }, addr: addr ?? '', certSerial: issued.serial,
      certNotAfter: issued.notAfter.getTime(), createdAt: now.getTime(), updatedAt: now.getTime(),
    };
    await this.store.compareAndPut(KEYS.node(nodeId), node, 0);
    const gossipKeys = await this.keyring.current();
    // A manager gets the cluster data key (it opens the sealed store); a worker never does.
    return {
      nodeId, role, certPem: issued.certPem, caPem: this.ca.certPem, ...(shared ? { store: shared } : {}), ...(gossipKeys ? { gossipKeys } : {}),
      ...(role === 'manager' ? { dataKey: this.sealer.exportForManager() } : {}),
    };
  }

  /**
   * Removes a node and revokes its certificates (by node id). A manager is removed only
   * with `force`; this manager never removes itself.
   */
  async removeNode(ref: string, force: boolean): Promise<{ removed: string }> {
    const { node, revision } = await this.nodes.find(ref);
    if (node.id === this.ident.nodeId) throw new MeshError('MESHD_BAD_ARGUMENT', 'a manager cannot remove itself: use cluster leave on it');
    if (node.role === 'manager' && !force) throw new MeshError('MESHD_BAD_ARGUMENT', `node ${node.id} is a manager: pass force to remove it`);
    const { list, revision: rrev } = await this.revocations();
    const now = this.now().getTime();
    list.prune(now);
    list.revokeNode(node.id, node.certNotAfter, now);
    // The removed node is cut off from gossip at the rotation its removal starts (it can no longer pull the ring).
    await this.leaderTxn([
      { op: 'delete', key: KEYS.node(node.id), ifRevision: revision },
      { op: 'put', key: KEYS.revocations, value: list.toJSON(), ifRevision: rrev },
      ...await this.keyring.rotationOps(now),
    ]);
    return { removed: node.id };
  }

  /** Issues a fresh certificate to a member (same id and role) for a new key. */
  async renewCert(peer: PeerIdentity, body: unknown): Promise<{ certPem: string; caPem: string; notAfter: string; role: JoinRole; store?: StoreConfig; dataKey?: string }> {
    const r = parseBody(renewRequestSchema, 'renew request', body);
    const { node, revision } = await this.nodes.find(peer.nodeId);
    const now = this.now();
    const issued = await this.ca.issue({ csrPem: r.csr, nodeId: node.id, role: node.role, sans: node.addr ? [node.addr] : [], now, validityMs: this.opts.certValidityMs });
    await this.store.compareAndPut(KEYS.node(node.id), { ...node, certSerial: issued.serial, certNotAfter: issued.notAfter.getTime(), updatedAt: now.getTime() }, revision);
    // The certificate carries the node's current role (promote/demote); a manager also learns the shared store it runs on.
    const shared = node.role === 'manager' ? shareableStore(this.opts.storeConfig ?? { kind: 'sqlite' }) : undefined;
    return {
      certPem: issued.certPem, caPem: this.ca.certPem, notAfter: issued.notAfter.toISOString(), role: node.role, ...(shared ? { store: shared } : {}),
      ...(node.role === 'manager' ? { dataKey: this.sealer.exportForManager() } : {}),
    };
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; undefined stays undefined. */
export function normalizeRemote(a: string | undefined): string | undefined {
  if (!a) return undefined;
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
