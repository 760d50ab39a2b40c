import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The long fault-injection variants run only with CHAOS_LONG=1 (see docs/reliability.md).
    reporters: ['default'],
  },
});
