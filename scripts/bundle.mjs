#!/usr/bin/env node
/**
 * Build-time bundles (issue 16 §3): `meshd` and `netctl` each become one ESM file, so a start
 * reads a few files instead of resolving and compiling hundreds of modules (0.45 s → see
 * bench/results/startup.json). Run after `tsc` (`npm run build`); it OVERWRITES tsc's
 * dist/src/bin/{meshd,netctl}.js, so there is one path to exec whichever build ran last (the
 * lab, the package's `bin` and the systemd unit all use dist/src/bin/meshd.js).
 *
 * - Code behind a dynamic `import()` (manager, etcd store, x509) goes to chunk files next to
 *   the entries (`splitting`), read only when a manager starts; chunks sit in the same
 *   directory as the entries because several modules find sibling scripts through
 *   `dirname(import.meta.url)`.
 * - Those sibling scripts (DNS worker, netns socket binder, whoami) are forked by path: each is
 *   its own small bundle in the same directory, without splitting (whoami runs its main only
 *   when it is the entry file itself).
 * - Packages with native code or files read at run time stay external and come from
 *   node_modules: better-sqlite3 (native), etcd3 (gRPC loads .proto files; its chunk is read
 *   only by an etcd-backed manager).
 * - dockerode is bundled (every node loads it at start), but what it requires at import for
 *   features meshd never uses — BuildKit sessions and build progress (@grpc/grpc-js,
 *   @grpc/proto-loader, protobufjs) and docker-modem's ssh:// transport (ssh2) — is replaced by
 *   a stub that require()s the real package from node_modules on first use: ~40 % of the agent's
 *   start was loading them.
 */
import { build } from 'esbuild';
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'src', 'bin');
export const EXTERNAL = ['better-sqlite3', 'etcd3'];

/** Packages required by dockerode / docker-modem at import, loaded on first use instead. */
const LAZY = new Set(['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'ssh2']);
const lazyDeps = {
  name: 'lazy-deps',
  setup(b) {
    b.onResolve({ filter: /^(@grpc\/grpc-js|@grpc\/proto-loader|protobufjs|ssh2)$/ }, (args) => {
      if (args.namespace === 'lazy-dep') return { path: args.path, external: true };
      if (!/node_modules\/(dockerode|docker-modem)\//.test(args.importer) || !LAZY.has(args.path)) return undefined;
      return { path: args.path, namespace: 'lazy-dep' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-dep' }, (args) => {
      const load = `let m; const load = () => (m ??= require(${JSON.stringify(args.path)}));`;
      // ssh2: docker-modem reads `.Client` at import; construct the real one when used.
      const contents = args.path === 'ssh2'
        ? `${load}\nmodule.exports = { Client: function Client(...a) { return new (load().Client)(...a); } };`
        : `${load}\nmodule.exports = new Proxy({}, { get: (_, k) => load()[k], has: (_, k) => k in load() });`;
      return { contents, loader: 'js', resolveDir: root };
    });
  },
};

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir,
  external: EXTERNAL,
  plugins: [lazyDeps],
  sourcemap: true,
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __meshdRequire } from 'node:module'; const require = __meshdRequire(import.meta.url);" },
};

// Chunk names carry a content hash: drop the previous build's, or they pile up (and get packed).
for (const f of (() => { try { return readdirSync(outdir); } catch { return []; } })()) if (f.startsWith('chunk-')) rmSync(join(outdir, f));

const main = await build({
  ...common,
  entryPoints: { meshd: 'src/bin/meshd.ts', netctl: 'src/bin/netctl.ts' },
  splitting: true,
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  metafile: true,
});
await build({
  ...common,
  entryPoints: {
    'worker-main': 'src/adapters/dns-server/worker-main.ts',
    whoami: 'src/adapters/runtime/whoami.ts',
  },
});

// The namespace binder child is plain CommonJS with node: builtins only (src/adapters/netns-bind-child.cts,
// kept small so its start is cheap): tsc's output is shipped as is, next to the bundles that spawn it.
copyFileSync(join(root, 'dist', 'src', 'adapters', 'netns-bind-child.cjs'), join(outdir, 'netns-bind-child.cjs'));
rmSync(join(outdir, 'netns-bind-child.js'), { force: true });

if (process.argv.includes('--analyze')) {
  const { analyzeMetafile } = await import('esbuild');
  console.log(await analyzeMetafile(main.metafile, { verbose: false }));
}
