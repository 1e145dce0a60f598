/**
 * Errors with stable codes (undici style) and one table (fastify style) mapping each
 * kind to an HTTP status and a CLI exit code. Never log-and-drop: throw a MeshError,
 * and let the edge (API handler, CLI) turn it into a status / exit code.
 */

export type ErrorKind = 'BadRequest' | 'NotFound' | 'Conflict' | 'Unavailable' | 'Forbidden' | 'Internal';

/** kind → HTTP status and CLI exit code. The single source of truth for both. */
export const ERROR_KINDS: Readonly<Record<ErrorKind, { status: number; exitCode: number }>> = Object.freeze({
  BadRequest: { status: 400, exitCode: 2 },
  Forbidden: { status: 403, exitCode: 4 },
  NotFound: { status: 404, exitCode: 3 },
  Conflict: { status: 409, exitCode: 5 },
  Unavailable: { status: 503, exitCode: 6 },
  Internal: { status: 500, exitCode: 1 },
});

/** Every stable error code, its kind and its message template. Codes never change meaning. */
export const ERROR_CODES = Object.freeze({
  MESHD_BAD_ARGUMENT: { kind: 'BadRequest', message: 'invalid argument' },
  MESHD_BAD_CONFIG: { kind: 'BadRequest', message: 'invalid configuration' },
  MESHD_BAD_JSON: { kind: 'BadRequest', message: 'request body is not valid JSON' },
  MESHD_BODY_TOO_LARGE: { kind: 'BadRequest', message: 'request body too large' },
  MESHD_UNKNOWN_ROUTE: { kind: 'NotFound', message: 'no such API route' },
  MESHD_NOT_FOUND: { kind: 'NotFound', message: 'not found' },
  /** A task's image is not on the node (images are never pulled); message `image X not present on node N`. */
  MESHD_IMAGE_NOT_FOUND: { kind: 'BadRequest', message: 'image not present on this node' },
  /** `netctl run --network N` on a network created without `--attachable` (docker's PermissionDenied). */
  MESHD_NOT_ATTACHABLE: { kind: 'Forbidden', message: 'network not manually attachable' },
  MESHD_LAB_NOT_FOUND: { kind: 'NotFound', message: 'no such lab' },
  MESHD_LAB_EXISTS: { kind: 'Conflict', message: 'lab already exists' },
  MESHD_NODE_NOT_FOUND: { kind: 'NotFound', message: 'no such node' },
  MESHD_AGENT_UNREACHABLE: { kind: 'Unavailable', message: 'cannot reach the agent' },
  MESHD_NOT_READY: { kind: 'Unavailable', message: 'not ready' },
  MESHD_EXEC_FAILED: { kind: 'Internal', message: 'command failed' },
  MESHD_NOT_ROOT: { kind: 'Forbidden', message: 'this needs root' },
  MESHD_INTERNAL: { kind: 'Internal', message: 'internal error' },
  MESHD_FORBIDDEN: { kind: 'Forbidden', message: 'this role may not call this endpoint' },
  MESHD_BAD_TOKEN: { kind: 'BadRequest', message: 'malformed join token' },
  MESHD_TOKEN_REJECTED: { kind: 'Forbidden', message: 'join token rejected' },
  MESHD_CA_MISMATCH: { kind: 'Forbidden', message: 'the manager CA does not match the join token digest' },
  MESHD_CERT_REJECTED: { kind: 'Forbidden', message: 'client certificate rejected' },
  MESHD_STORE_CORRUPT: { kind: 'Internal', message: 'the state store is corrupt' },
  MESHD_STORE_CONFLICT: { kind: 'Conflict', message: 'store revision conflict' },
  MESHD_STORE_UNAVAILABLE: { kind: 'Unavailable', message: 'the state store is unavailable' },
  MESHD_CLUSTER_EXISTS: { kind: 'Conflict', message: 'a cluster already exists in this data directory' },
  /** A gossip key rotation is already under way (src/manager/gossip-keys.ts): the caller retries after it ends. */
  MESHD_ROTATION_BUSY: { kind: 'Conflict', message: 'a gossip key rotation is under way' },
  MESHD_MANAGER_UNREACHABLE: { kind: 'Unavailable', message: 'cannot reach the manager' },
  /** The caller gave up on its own request (a long-poll stopped with its link): not the manager's failure, never failed over. */
  MESHD_CANCELLED: { kind: 'Unavailable', message: 'request cancelled by its caller' },
  /** Another node's agent could not be asked over the peer API (down, refused, or no valid certificate): details.reason says which. */
  MESHD_PEER_UNREACHABLE: { kind: 'Unavailable', message: 'cannot reach the peer node' },
  MESHD_NOT_LEADER: { kind: 'Unavailable', message: 'this manager is not the leader' },
  /** The request is valid but this runtime or setup cannot do it (named in the message): refused, never dropped. */
  MESHD_UNSUPPORTED: { kind: 'BadRequest', message: 'not supported here' },
  /** A sealed store value failed authentication (tampered, moved to another key, or another cluster's data key): src/adapters/pki/seal.ts. */
  MESHD_UNSEAL_FAILED: { kind: 'Internal', message: 'a sealed store value cannot be opened' },
  /** A manager holds no cluster data key although its store is sealed (src/manager/data-key.ts). */
  MESHD_DATA_KEY_MISSING: { kind: 'Internal', message: 'the cluster data key is missing' },
  /** `secret rm` / `config rm` of one a service still uses; details.services names them. */
  MESHD_SECRET_IN_USE: { kind: 'Conflict', message: 'the secret or config is in use by a service' },
} as const satisfies Record<string, { kind: ErrorKind; message: string }>);

export type ErrorCode = keyof typeof ERROR_CODES;

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].message, options);
    this.name = 'MeshError';
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.details = details;
  }
  get status(): number {
    return ERROR_KINDS[this.kind].status;
  }
  get exitCode(): number {
    return ERROR_KINDS[this.kind].exitCode;
  }
  toJSON(): { code: ErrorCode; kind: ErrorKind; message: string; details?: Readonly<Record<string, unknown>> } {
    return { code: this.code, kind: this.kind, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isMeshError(e: unknown): e is MeshError {
  return e instanceof MeshError;
}

/** Wraps anything thrown into a MeshError; unknown failures are Internal. */
export function toMeshError(e: unknown): MeshError {
  if (e instanceof MeshError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new MeshError('MESHD_INTERNAL', msg, undefined, { cause: e });
}

/** Rebuilds a MeshError from its JSON form (API responses); unknown codes become Internal. */
export function fromErrorJSON(body: unknown): MeshError {
  if (body && typeof body === 'object' && 'code' in body && typeof (body as { code: unknown }).code === 'string') {
    const b = body as { code: string; message?: unknown; details?: unknown };
    if (Object.prototype.hasOwnProperty.call(ERROR_CODES, b.code)) {
      return new MeshError(b.code as ErrorCode, typeof b.message === 'string' ? b.message : undefined,
        b.details && typeof b.details === 'object' ? (b.details as Record<string, unknown>) : undefined);
    }
  }
  return new MeshError('MESHD_INTERNAL', `unexpected error response: ${JSON.stringify(body)?.slice(0, 200)}`);
}
