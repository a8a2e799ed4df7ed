// Three layers, one run: `npm test` runs them all; `npm run test:unit` only the first.
// - unit: pure and in-process tests beside the code; no engines, no global setup.
// - integration: test/integration and the heavy tests beside the code (the launcher, CDK synths);
//   jest's global setup starts ONE local stack for the run (test/setup/global-setup.mjs).
// - e2e: a real browser and the packed SDK package.
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
};
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  moduleNameMapper: {
    '^@taskflow/realtime$': '<rootDir>/clients/web-sdk/src/index.ts',
    '^@taskflow/stream$': '<rootDir>/packages/stream/src/index.ts',
    '^@taskflow/stream/codec$': '<rootDir>/packages/stream/src/record-codec.ts',
    '^@taskflow/stream/events$': '<rootDir>/packages/stream/src/change-event.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/test/setup/fast-check.mjs'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.taskflow/'],
};
// Tests outside test/ that need engines, whole processes or a full CDK synth (tens of seconds):
// they run with the integration layer so that the unit layer stays a quick loop.
const HEAVY_TESTS_BESIDE_CODE = [
  '<rootDir>/cli/commands/dev.test.ts',
  '<rootDir>/infra/local/stack-lifecycle.test.ts',
  '<rootDir>/infra/aws/app.test.ts',
  '<rootDir>/infra/aws/nag.test.ts',
  '<rootDir>/infra/aws/iam.test.ts',
];
const E2E = ['<rootDir>/test/e2e/**/*.test.ts', '<rootDir>/clients/web-sdk/test/**/*.test.ts'];

export default {
  testTimeout: 60000,
  maxWorkers: 2,
  // A worker ends by letting its event loop drain (3-34 ms measured) and then tearing its heap
  // down, ~0.2 ms per MB and much slower on a loaded host: a worker of 800 MB+ (after ~55 files,
  // or a CDK synth) took 200-600 ms idle and more beside other runs, past jest's default 500 ms
  // grace, and jest printed "a worker process has failed to exit gracefully" though nothing leaked.
  // Workers are replaced between files once past 384 MB, and get 5 s to exit; a real leak (a
  // handle that keeps the loop alive) still shows as that warning.
  workerIdleMemoryLimit: '384MB',
  workerGracefulExitTimeout: 5000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/**/?(*.)test.ts'],
      testPathIgnorePatterns: [...common.testPathIgnorePatterns, '<rootDir>/test/integration/', '<rootDir>/test/e2e/', '<rootDir>/clients/web-sdk/test/', ...HEAVY_TESTS_BESIDE_CODE],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', ...HEAVY_TESTS_BESIDE_CODE],
      globalSetup: '<rootDir>/test/setup/global-setup.mjs',
      globalTeardown: '<rootDir>/test/setup/global-teardown.mjs',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: E2E,
      globalSetup: '<rootDir>/test/setup/global-setup.mjs',
      globalTeardown: '<rootDir>/test/setup/global-teardown.mjs',
    },
  ],
};
