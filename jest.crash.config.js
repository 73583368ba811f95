/** Crash loops (test/crash): SIGKILLs under load on both stores, then a reconciliation. `npm run test:crash`. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/crash'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 600000,
  maxWorkers: 1,
};
