/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.ts'],
  // The MLX suite needs the MLX build: npm run test:mlx.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__test__/mlx/'],
  testTimeout: 180000,
};
