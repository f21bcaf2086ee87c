import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.ts';

// Scenarios start real clusters and share 2 cores: one file at a time, generous timeouts.
const base = packageTestConfig(180_000);
export default defineConfig({
  ...base,
  test: { ...base.test, fileParallelism: false, hookTimeout: 60_000, globalSetup: ['./test/lib/global-setup.ts'] },
});
