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
);
