// Lint: the one rule that matters most here is that src/core stays pure
// (ARCHITECTURE §2): no I/O modules, no timers, no wall clock. Time is injected.
import tseslint from 'typescript-eslint';

const ioModules = [
  'dgram', 'net', 'child_process', 'fs', 'fs/promises', 'http', 'https', 'http2', 'tls',
  'dns', 'os', 'worker_threads', 'cluster', 'timers', 'timers/promises', 'process', 'readline',
];
const bannedPaths = ioModules.flatMap((m) => [
  { name: m, message: 'src/core is pure: no I/O modules (put edges in src/adapters).' },
  { name: `node:${m}`, message: 'src/core is pure: no I/O modules (put edges in src/adapters).' },
]);

/**
 * Layer boundaries (ARCHITECTURE §2): who may import whom. core is pure (below); adapters are edges
 * and know no daemon; the agent hosts the manager but never the lab or the CLI; the manager never
 * imports the agent; the CLI talks to daemons only through the API module and the client; src/api
 * holds the shapes both sides read and imports only core. Each rule is proven to fire by
 * test/unit/core/boundaries-lint.test.ts.
 */
const layer = (dir, banned, message) => ({
  files: [`src/${dir}/**/*.ts`],
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [{ group: banned.flatMap((b) => [`**/${b}/**`, `**/${b}`]), message }],
    }],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/go/**'] },
  {
    files: ['**/*.ts', '**/*.cts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { ecmaVersion: 2022, sourceType: 'module' } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      'no-var': 'error',
      'prefer-const': 'error',
      'no-debugger': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: bannedPaths,
        patterns: [{ group: ['**/adapters/**', '**/agent/**', '**/manager/**', '**/cli/**', '**/lab/**'], message: 'src/core must not import edges.' }],
      }],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'core: use tick(now)/nextDeadline(), not timers.' },
        { name: 'setInterval', message: 'core: use tick(now)/nextDeadline(), not timers.' },
        { name: 'setImmediate', message: 'core: no timers.' },
        { name: 'clearTimeout', message: 'core: no timers.' },
        { name: 'clearInterval', message: 'core: no timers.' },
        { name: 'queueMicrotask', message: 'core: no scheduling.' },
        { name: 'process', message: 'core: no process access.' },
        { name: 'require', message: 'core: ESM imports only.' },
        { name: 'fetch', message: 'core: no I/O.' },
        { name: 'performance', message: 'core: time is injected.' },
      ],
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'core: time is injected (now), never Date.now().' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'core: time is injected, never new Date().' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'core: randomness is injected (seeded rng).' },
        { selector: 'ImportExpression', message: 'core: no dynamic imports.' },
      ],
    },
  },
  layer('adapters', ['agent', 'manager', 'cli', 'lab', 'bin'], 'src/adapters are edges: they never import the agent, manager, cli, lab or bin.'),
  layer('agent', ['lab', 'cli', 'bin'], 'src/agent never imports the lab, the CLI or bin (the lab passes what it needs through the config).'),
  layer('manager', ['agent', 'cli', 'lab', 'bin'], 'src/manager never imports the agent, the CLI, the lab or bin (shared shapes live in src/api, src/adapters/api).'),
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/agent/**', '**/manager/**', '**/bin/**'], message: 'src/cli never imports agent or manager internals: use src/api, adapters/api/client and core.' },
        ],
      }],
    },
  },
  layer('api', ['adapters', 'agent', 'manager', 'cli', 'lab', 'bin'], 'src/api holds shapes both sides read: it imports only src/core.'),
  layer('lab', ['agent', 'manager', 'cli', 'bin'], 'src/lab drives daemons from outside (processes, sockets): it never imports the agent, manager, cli or bin.'),
);
