// ESLint flat config: typescript-eslint's recommended rules (syntax only, no type information, so it stays fast).
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/',
      '**/node_modules/',
      '**/coverage/',
      'var/',
      '.bench-out/',
      'payloads/', // Python
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      // Node globals for plain .js files (config); typescript-eslint turns no-undef off for .ts, where tsc checks.
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    // Layers point one way: a module must not reach itself again through what it imports.
    // Workspace packages resolve to their built dist/ and node_modules is external; neither is
    // followed, since tsc's project references already forbid cycles between packages.
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js', '.mjs', '.cjs'],
      'import-x/resolver-next': [createTypeScriptImportResolver()],
      'import-x/ignore': ['/node_modules/', '/dist/'],
      'import-x/cache': { lifetime: Infinity },
    },
    rules: {
      'import-x/no-cycle': 'error',
    },
  },
  {
    // no-cycle skips type-only imports, so it would not see commands importing the CLI's types
    // back from cli.ts; the commands are wired by cli.ts and take their Context from context.ts.
    files: ['apps/cli/src/commands/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../cli.js'], message: 'cli.ts wires the commands; import Context from ../context.js.' },
          ],
        },
      ],
    },
  },
);
