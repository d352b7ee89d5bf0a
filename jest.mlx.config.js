/** The MLX suite (npm run test:mlx): needs the MLX addon that scripts/mlx-linux builds. */
/** @type {import('jest').Config} */
module.exports = {
  ...require('./jest.config.js'),
  testMatch: ['<rootDir>/__test__/mlx/*.spec.ts'],
  testPathIgnorePatterns: [],
};
