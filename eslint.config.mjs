// @ts-check
// Lint: eslint's recommended rules plus typescript-eslint's type-aware recommended set.
// The import direction between modules is checked by dependency-cruiser (.dependency-cruiser.cjs, `npm run lint:deps`).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'queue/**', '.bench/**', 'bench/results/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Promise misuse is the bug class that matters most in a relay (an unawaited store write acknowledges
      // mail that is not stored); both are in the recommended set, listed here so they are never dropped.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `return promise` inside try/catch skips the catch (and the finally runs too early): await it there.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // == only for `x == null` (null or undefined); everything else compares strictly.
      eqeqeq: ['error', 'smart'],
      // A switch over a union (job state, outcome, attempt class) must handle every member or have a default.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `_name` marks a parameter kept for an interface's signature; a caught error may go unused.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Off: `async` without `await` is how stores, caches and fakes implement Promise-returning interfaces,
      // and removing `async` would turn their throws into synchronous throws (a behaviour change).
      // Forgotten awaits are caught by no-floating-promises and no-misused-promises instead.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read JSON bodies (API responses, CLI --json output, log lines) as `any` and check them with
      // expect(); a wrong field fails the assertion, so typing every response would add noise, not safety.
      // jest's asymmetric matchers (expect.any(), expect.objectContaining()) are typed `any` as well.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // Plain JavaScript config files (eslint.config.mjs, jest.config.js, .dependency-cruiser.cjs) are not in
    // tsconfig.json, so they are linted without type information.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly', __dirname: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' }, // CommonJS config files load modules with require().
  },
);
