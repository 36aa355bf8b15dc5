// Tests run TypeScript sources directly (swc → CommonJS), and the .mjs they share with bench/ (scripts/lib/);
// workspace packages resolve to their src.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/packages', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|m?j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: ['/node_modules/(?!(cookie|content-disposition)/)'],
  moduleNameMapper: {
    '^@berth/(contracts|store|manifests|telemetry)$': '<rootDir>/packages/$1/src/index.ts',
    '^@berth/telemetry/training-log$': '<rootDir>/packages/telemetry/src/training-log.ts',
    '^@berth/contracts/(job-states|sse)$': '<rootDir>/packages/contracts/src/$1.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60_000,
};
