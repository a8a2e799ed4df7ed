// Lint rules that catch real bugs in async pipeline code, and the import rules between folders; formatting is not policed here.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import tseslint from 'typescript-eslint';

// The import rules of docs/ARCHITECTURE.md ("Folder map and import rules"), enforced here so that
// the next wrong-way import fails `npm test`. Relative specifiers are matched, so each regex names
// a top-level folder reached by climbing out of the importing one.
const SERVICES = ['capture', 'router', 'search', 'audit', 'analytics', 'notifications', 'gdpr'];
const TESTS = ['**/*.test.ts', '**/test/**'];
const banned = (folders, message) => ({ regex: `^(\\.\\./)+(${folders.join('|')})/`, message });
const stackInfo = { regex: '(^|/)stack-info\\.js$', message: 'lib/stack-info describes the local stack: only the launcher, tools and tests read it.' };

const bySdkPackageName = { regex: 'web-sdk/src(/|$)', message: "import the SDK by its package name, '@taskflow/realtime'." };

// A later config object's options replace an earlier one's for the same rule, so every folder's
// list repeats the rule that applies everywhere.
function importRules(files, patterns, ignores = TESTS) {
  return { files, ignores, rules: { 'no-restricted-imports': ['error', { patterns: [...patterns, bySdkPackageName] }] } };
}

export default tseslint.config(
  { ignores: ['node_modules/', '**/dist/', 'clients/web-sdk/test/fixtures/released/', '.taskflow/', 'coverage/', 'schemas/generated/', 'test/bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { ...importX.flatConfigs.typescript.settings, 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  // Everyone outside the SDK uses it as its users do, by package name.
  importRules(['**/*.ts'], [], ['clients/web-sdk/**']),
  // Contracts depend on nothing else in the repository.
  importRules(['schemas/**/*.ts'], [{ regex: '^\\.\\./', message: 'schemas/ (the contracts) imports nothing outside schemas/.' }]),
  // lib/ is shared by every service and knows none of them.
  importRules(['lib/**/*.ts'], [banned([...SERVICES, 'cli', 'infra', 'clients', 'db', 'test', 'scripts'], 'lib/ knows no service, tool or test.')]),
  // The consumer kit is shared by every reader and knows none of them (it may use lib/ and schemas/).
  importRules(['packages/stream/**/*.ts'], [banned([...SERVICES, 'cli', 'infra', 'clients', 'db', 'test', 'scripts'], '@taskflow/stream knows no service, tool or test.')]),
  // Services meet only through the stream and the contracts, and know nothing of the local stack.
  ...SERVICES.map((service) =>
    importRules([`${service}/**/*.ts`], [
      banned(SERVICES.filter((s) => s !== service), `${service}/ meets other services only through the stream and schemas/.`),
      banned(['infra', 'cli', 'clients', 'db', 'test', 'scripts'], `${service}/ does not know the local stack, the CLI or the tests.`),
      stackInfo,
    ]),
  ),
  // The SDK ships alone: nothing outside its package except the generated event types it bundles.
  {
    files: ['clients/web-sdk/src/**/*.ts'],
    ignores: TESTS,
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./\\.\\.(?!/\\.\\./schemas/generated/)', message: 'the SDK ships alone: import only inside clients/web-sdk (and schemas/generated types).' }] }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' } },
  },
);
