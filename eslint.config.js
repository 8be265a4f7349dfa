// @ts-check
// `npm run lint`. Syntax-level rules only (no type information), so it stays fast;
// `npm run typecheck` is what checks types.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The Node.js globals plain JavaScript files here use (TypeScript files get them from @types/node).
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'Buffer', 'URL', 'URLSearchParams', 'fetch', 'AbortController', 'AbortSignal', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'queueMicrotask', 'structuredClone'].map(
    (name) => [name, /** @type {const} */ ('readonly')],
  ),
);

export default defineConfig(
  { ignores: ['**/node_modules/', '**/dist/', 'test-output/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a parameter or binding kept on purpose (a handler signature, a destructured rest).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // `for (;;)` and `while (true)` loops that end by return are idiomatic here (drain loops).
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
    },
  },
  {
    // Tests read arbitrary JSON bodies and reach into internals; `any` there is a convenience, not a hole.
    files: ['**/test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The order service mounts the dashboard: a value imported back from it would be an import cycle.
    files: ['dashboard/src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: '@checkout-saga/order', allowTypeImports: true, message: 'types only: the order service hands over what the dashboard needs at run time (source.ts)' }] },
      ],
    },
  },
  {
    // The kit's front door: a service's code imports '@checkout-saga/shared' and nothing else of the kit
    // (its plumbing is '@checkout-saga/shared/internal', for the kit, its tests, bench/ and scripts/).
    files: ['services/*/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@checkout-saga/shared/*'], message: "A service imports only the kit's front door, '@checkout-saga/shared' (see shared/src/index.ts)." },
            { group: ['**/shared/src', '**/shared/src/**'], message: "A service imports only the kit's front door, '@checkout-saga/shared' (see shared/src/index.ts)." },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: nodeGlobals },
  },
);
