/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Real-browser tests (headless Chromium) run only through `npm run test:browser` (jest.browser.config.js);
  // the abuse suite (test/abuse) and the crash loops (test/crash) through `npm run test:abuse` / `test:crash`.
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$', '<rootDir>/test/abuse/', '<rootDir>/test/crash/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 30000,
};
