/**
 * Join tokens, Docker's SWMTKN-1-<digest>-<secret> shape: `MESHTKN-1-<ca digest>-<secret>`.
 *
 * - `<ca digest>`: sha256 of the root CA certificate DER, 64 lowercase hex chars. The joining
 *   node fetches the CA from the manager and pins it only if its digest equals this one, so
 *   a token also authenticates the manager (no trust on first use).
 * - `<secret>`: 32 lowercase hex chars (128 random bits), one per role (worker, manager).
 *   Rotating a role's secret makes every old token of that role useless; nodes already in
 *   the cluster are unaffected (they hold certificates, not tokens).
 *
 * Pure: randomness is passed in (bytes), and the secret comparison is injected so the edge
 * can use crypto.timingSafeEqual (see src/adapters/pki/compare.ts).
 */
import { MeshError } from '../errors.js';

export const TOKEN_PREFIX = 'MESHTKN';
export const TOKEN_VERSION = 1;
/** Length of the CA digest part (sha256, hex). */
export const DIGEST_HEX_LEN = 64;
/** Length of the secret part (16 bytes, hex). */
export const SECRET_HEX_LEN = 32;
export const SECRET_BYTES = SECRET_HEX_LEN / 2;

export type JoinRole = 'worker' | 'manager';
export const JOIN_ROLES: readonly JoinRole[] = ['worker', 'manager'];

export interface JoinToken {
  version: number;
  caDigest: string;
  secret: string;
}

/** The two current secrets; the state a manager persists (cluster/tokens). */
export interface TokenSecrets {
  worker: string;
  manager: string;
}

const HEX_RE = /^[0-9a-f]*$/;

export function isJoinRole(v: unknown): v is JoinRole {
  return v === 'worker' || v === 'manager';
}

function bad(reason: string, message: string): MeshError {
  return new MeshError('MESHD_BAD_TOKEN', `malformed join token: ${message}`, { reason });
}

/**
 * Parses a token, with a specific reason on failure (details.reason: `type`, `shape`,
 * `prefix`, `version`, `digest-length`, `digest-charset`, `secret-length`,
 * `secret-charset`). Surrounding whitespace (a trailing newline from a file) is ignored.
 * The token itself is never echoed in the message: it is a secret.
 */
export function parseJoinToken(raw: unknown): JoinToken {
  if (typeof raw !== 'string') throw bad('type', 'expected a string');
  const s = raw.trim();
  if (s.length > 256) throw bad('shape', `too long (${s.length} chars)`);
  const parts = s.split('-');
  if (parts.length !== 4) throw bad('shape', `expected ${TOKEN_PREFIX}-${TOKEN_VERSION}-<ca digest>-<secret>, got ${parts.length} dash-separated parts`);
  const [prefix, version, digest, secret] = parts as [string, string, string, string];
  if (prefix !== TOKEN_PREFIX) throw bad('prefix', `must start with ${TOKEN_PREFIX}-`);
  if (!/^[0-9]{1,3}$/.test(version)) throw bad('version', 'version is not a number');
  if (Number(version) !== TOKEN_VERSION) throw bad('version', `unsupported token version ${Number(version)} (this build knows ${TOKEN_VERSION})`);
  if (digest.length !== DIGEST_HEX_LEN) throw bad('digest-length', `CA digest must be ${DIGEST_HEX_LEN} hex chars, got ${digest.length}`);
  if (!HEX_RE.test(digest)) throw bad('digest-charset', 'CA digest must be lowercase hex');
  if (secret.length !== SECRET_HEX_LEN) throw bad('secret-length', `secret must be ${SECRET_HEX_LEN} hex chars, got ${secret.length}`);
  if (!HEX_RE.test(secret)) throw bad('secret-charset', 'secret must be lowercase hex');
  return { version: TOKEN_VERSION, caDigest: digest, secret };
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Encodes fresh random bytes (exactly SECRET_BYTES, from the edge's CSPRNG) as a secret. */
export function secretFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== SECRET_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `a token secret needs ${SECRET_BYTES} random bytes, got ${bytes.length}`);
  return hex(bytes);
}

export function formatJoinToken(caDigest: string, secret: string): string {
  const t = `${TOKEN_PREFIX}-${TOKEN_VERSION}-${caDigest}-${secret}`;
  parseJoinToken(t); // validates both parts
  return t;
}

export function newTokenSecrets(workerBytes: Uint8Array, managerBytes: Uint8Array): TokenSecrets {
  const s = { worker: secretFromBytes(workerBytes), manager: secretFromBytes(managerBytes) };
  if (s.worker === s.manager) throw new MeshError('MESHD_BAD_ARGUMENT', 'worker and manager secrets must differ');
  return s;
}

/** Returns new secrets with `role`'s secret replaced (the other role keeps its token). */
export function rotateSecret(current: TokenSecrets, role: JoinRole, bytes: Uint8Array): TokenSecrets {
  const next = { ...current, [role]: secretFromBytes(bytes) };
  if (next.worker === next.manager) throw new MeshError('MESHD_BAD_ARGUMENT', 'worker and manager secrets must differ');
  return next;
}

/** Validates a persisted TokenSecrets document (from the store). */
export function parseTokenSecrets(v: unknown): TokenSecrets {
  const o = v as Partial<TokenSecrets> | null;
  const ok = (x: unknown): x is string => typeof x === 'string' && x.length === SECRET_HEX_LEN && HEX_RE.test(x);
  if (!o || typeof o !== 'object' || !ok(o.worker) || !ok(o.manager)) {
    throw new MeshError('MESHD_STORE_CORRUPT', 'stored join-token secrets are malformed');
  }
  return { worker: o.worker, manager: o.manager };
}

/** Constant-time string equality, injected by the edge (crypto.timingSafeEqual). */
export type SecretEquals = (a: string, b: string) => boolean;

/**
 * Which role a presented token grants, or a MESHD_TOKEN_REJECTED / MESHD_BAD_TOKEN error.
 * Both secrets are always compared (no early exit) so timing does not tell which one was
 * close. `caDigest` is this cluster's digest: a token of another cluster is refused.
 */
export function roleForToken(raw: unknown, caDigest: string, secrets: TokenSecrets, eq: SecretEquals): JoinRole {
  const t = parseJoinToken(raw);
  if (t.caDigest !== caDigest) {
    throw new MeshError('MESHD_TOKEN_REJECTED', 'join token belongs to another cluster (its CA digest does not match this manager\'s CA)', { reason: 'ca-digest' });
  }
  const w = eq(t.secret, secrets.worker);
  const m = eq(t.secret, secrets.manager);
  if (m) return 'manager';
  if (w) return 'worker';
  throw new MeshError('MESHD_TOKEN_REJECTED', 'join token secret is not valid (wrong or rotated token)', { reason: 'secret' });
}

/**
 * The role a join may get: the token's role, unless the joiner asks for a lower one
 * (a manager token may join a worker). Asking for more than the token grants is refused.
 */
export function grantedRole(tokenRole: JoinRole, requested: JoinRole | undefined): JoinRole {
  if (requested === undefined || requested === tokenRole) return tokenRole;
  if (tokenRole === 'manager' && requested === 'worker') return 'worker';
  throw new MeshError('MESHD_TOKEN_REJECTED', `a ${tokenRole} token cannot join as ${requested}`, { reason: 'role' });
}
