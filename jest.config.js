const path = require('path');

// The addon's graph cache for the whole run lives under .cache/, not in the user's cache folder.
// Set here, in Jest's own process: the addon reads the real environment, which tests cannot
// change (Jest gives each test file a copy of process.env).
process.env.SEMANTIC_SEARCH_CACHE = process.env.SEMANTIC_SEARCH_CACHE || path.join(__dirname, '.cache', 'test-graph-cache');

/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.ts'],
  // The MLX suite needs the MLX build: npm run test:mlx.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__test__/mlx/'],
  testTimeout: 180000,
};
