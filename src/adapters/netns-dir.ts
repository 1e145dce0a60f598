/**
 * iproute2's named network namespaces: `ip netns add NAME` makes the file NETNS_RUN_DIR/NAME (a bind
 * mount of the namespace), `ip netns list` reads this directory. Whether one exists is a file check —
 * no `ip netns list` process per question (spawning one from a busy agent cost a task's start a round
 * trip through its event loop, issue 18).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const NETNS_RUN_DIR = '/run/netns';

/** Whether the named namespace `name` exists. */
export function netnsExists(name: string): boolean {
  return existsSync(join(NETNS_RUN_DIR, name));
}
