/** The standing abuse suite (test/abuse): attacks replayed from outside on loopback. `npm run test:abuse`. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/abuse'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
  // Floods and slow clients measure the relay's answers: one suite at a time on the shared cores.
  maxWorkers: 1,
};
