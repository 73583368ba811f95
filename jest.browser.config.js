/** Real-browser tests: headless Chromium (/usr/bin/chromium) driven by playwright-core. `npm run test:browser`. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.browser.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
  // One browser at a time: the machine's cores are shared.
  maxWorkers: 1,
};
