import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/.gembatch/**', '.cache/**', 'infra/grafana/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@gembatch/*/src/*'], message: 'Import package names and their declared exports only.' },
            { group: ['**/services/*'], message: 'Services never import each other.' },
          ],
        },
      ],
      // One kind of private member in the repo: ES `#private` (enforced at run time, not only by tsc).
      // `private constructor` stays allowed: ES has no private constructors.
      'no-restricted-syntax': [
        'error',
        {
          selector:
            ':matches(PropertyDefinition, MethodDefinition[kind!="constructor"], AccessorProperty, TSParameterProperty)[accessibility="private"]',
          message:
            'Use an ES private member (`#name`) instead of TypeScript `private`; a constructor parameter becomes a `#field` assigned in the constructor.',
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // Off: `async` is kept on methods that implement a Promise-returning interface without awaiting
      // (engines' countTokens, stores' restart, Fastify hooks), so a synchronous throw still becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // Re-rejecting a caught value (`.catch((error: unknown) => … Promise.reject(error))`) passes on what was thrown, Error or not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    files: ['**/test/**/*.ts', '**/*.test.ts', 'chaos/**/*.ts'],
    rules: {
      // Tests read untyped JSON bodies (`response.json()` is `any`) and check their shape with `expect`,
      // which is the type check there; typing every body would only restate the assertion.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  // The web console's browser modules (services/api/console): browser globals, no Node.
  {
    files: ['services/api/console/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        [
          'document',
          'window',
          'location',
          'sessionStorage',
          'fetch',
          'FormData',
          'Blob',
          'URL',
          'Node',
          'setTimeout',
          'clearTimeout',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
