/**
 * Images a node lacks. Images are never pulled: a node whose engine does not hold a task's
 * image rejects the task (`image X not present on node N`, see spec/runtime.ts) and, like
 * swarm, the replacement goes elsewhere. The memory is the failed tasks themselves (their
 * `error`, kept in the task history), so it survives a manager failover with no extra
 * record; it fades after IMAGE_MISSING_TTL_MS (someone may `docker load` the image) and is
 * dropped at once when the node's description changes (another engine may have it).
 */
import type { Node, Task } from '../spec/types.js';
import { isImageMissing } from '../spec/runtime.js';

/**
 * How long a node stays out of the running for an image it reported missing (ms). When
 * every node lacks the image, the task waits this long (pending, with the reason shown)
 * before a node is tried again — instead of failing in a loop.
 */
export const IMAGE_MISSING_TTL_MS = 60_000;

/**
 * The image `t` was reported missing on its node and that report still counts at `now`
 * (failed within the TTL, and after the node's description last changed); else undefined.
 */
export function missingImageOf(t: Pick<Task, 'state' | 'error' | 'spec' | 'timestamps'>, node: Pick<Node, 'descriptionAt'>, now: number): string | undefined {
  if (t.state !== 'failed' && t.state !== 'rejected') return undefined;
  if (!isImageMissing(t.error, t.spec.image)) return undefined;
  const at = t.timestamps.updated;
  if (now - at > IMAGE_MISSING_TTL_MS) return undefined;
  if (node.descriptionAt !== undefined && at < node.descriptionAt) return undefined;
  return t.spec.image;
}
