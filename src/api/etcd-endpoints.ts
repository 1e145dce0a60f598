/**
 * `--etcd-endpoints URL[,URL]` parsing, kept apart from store-config.ts so netctl can use it
 * without loading the store drivers (etcd3 and better-sqlite3 cost ~0.4 s of CPU per CLI call).
 */

/** Splits a comma-separated endpoint list, trimming blanks and trailing slashes. */
export function parseEndpoints(list: string): string[] {
  return list.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => s.replace(/\/+$/, ''));
}
