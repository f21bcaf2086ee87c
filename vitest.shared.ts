import { defineConfig } from 'vitest/config';

/**
 * The test settings every package shares. Each package keeps its own vitest config
 * (running vitest inside a package otherwise finds the root `projects` config and
 * no project), built from this one.
 */
export function packageTestConfig(timeoutMs = 30_000) {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: timeoutMs,
      hookTimeout: 30_000,
      reporters: ['default', 'json'],
      outputFile: { json: '.vitest-report.json' },
    },
  });
}
