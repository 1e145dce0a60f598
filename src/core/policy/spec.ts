/**
 * The spec side of policies between services (issue #19): the `allowFrom` field of a service
 * spec and its rules. Kept here (not in spec/validate.ts) so the policy's meaning lives in one
 * folder; validate.ts only plugs the schema in.
 *
 * - `allowFrom`: service NAMES (DNS labels), not ids: a name is what users type, what Compose
 *   files hold, and what every endpoint record in the gossip tables carries (`serviceName`), so
 *   a service recreated under the same name is allowed again without an edit. A name that no
 *   service has (yet) is accepted: it simply matches no endpoint until such a service runs.
 * - at most MAX_ALLOW_FROM entries; duplicates are dropped (first-seen order kept).
 */
import { z } from 'zod';

/** Most entries one allow-from list may hold. */
export const MAX_ALLOW_FROM = 64;

const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const allowFromSchema = z
  .array(z.string().max(63).regex(DNS_LABEL_RE, 'must be a service name: [a-z0-9-], at most 63 chars, not starting or ending with -'))
  .max(MAX_ALLOW_FROM, `at most ${MAX_ALLOW_FROM} services`);

/** `--allow-from` edits on update (docker's -add / -rm style); `replace` wins over the base when given. */
export interface AllowFromEdit {
  /** `--allow-from`: the new whole list; null: back to open (no list). */
  replace?: string[] | null;
  add?: readonly string[];
  rm?: readonly string[];
}

/**
 * The list after an update's edits, or undefined (open). Removing names never turns a list
 * into "open": a list that ends up empty means nobody may connect, which is what removing the
 * last allowed service asks for.
 */
export function editAllowFrom(base: readonly string[] | undefined, e: AllowFromEdit): string[] | undefined {
  let cur: string[] | undefined = e.replace === undefined ? base && [...base] : e.replace === null ? undefined : [...e.replace];
  if (e.add?.length) cur = [...(cur ?? []), ...e.add.filter((n) => !(cur ?? []).includes(n))];
  if (e.rm?.length && cur) cur = cur.filter((n) => !e.rm!.includes(n));
  return cur && [...new Set(cur)];
}
