/**
 * A manager's "not the leader" refusal (MESHD_NOT_LEADER, see Manager) as clients read it:
 * where to send the request next (the agent's ManagerPool) and what netctl tells the
 * user. Pure, and light: netctl imports it without the manager's client or stores.
 */
import { MeshError } from '../core/errors.js';

/**
 * A follower's refusal (MESHD_NOT_LEADER; also a deposed leader's, and an older manager's
 * MESHD_NOT_READY with reason `not-leader`): the leader's address (null while none is
 * elected or it is unknown), else undefined.
 */
export function notLeaderTarget(e: unknown): { leader: string | null } | undefined {
  if (!(e instanceof MeshError)) return undefined;
  if (e.code !== 'MESHD_NOT_LEADER' && !(e.code === 'MESHD_NOT_READY' && e.details?.reason === 'not-leader')) return undefined;
  const l = e.details?.leader;
  return { leader: typeof l === 'string' && l.length > 0 ? l : null };
}

/**
 * The hint netctl prints under a not-leader refusal that reached it (the agent's pool
 * already followed the redirect and could not get the write served): which manager leads,
 * by hostname and API address when the refusal names it, and what to do. Undefined for
 * other errors (pure).
 */
export function notLeaderHint(e: unknown): string | undefined {
  if (!notLeaderTarget(e)) return undefined;
  const d = (e as MeshError).details ?? {};
  const name = typeof d.leaderName === 'string' && d.leaderName ? d.leaderName : undefined;
  const addr = typeof d.leader === 'string' && d.leader ? d.leader : undefined;
  if (d.reason === 'deposed') return 'the manager lost its leadership while writing: nothing was changed; retry shortly (another manager is being elected)';
  if (!name && !addr) return 'no manager leads right now (an election is under way, or too few managers are reachable): retry shortly; netctl cluster managers lists them';
  const who = name ? `${name}${addr ? ` (${addr})` : ''}` : addr!;
  return `the leader is ${who}, but this node could not get it to serve the request: retry shortly, or run netctl on ${name ?? 'the leader'}`;
}
