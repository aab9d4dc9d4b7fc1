import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    // Integration tests start real mosquitto, influxd, socat and Chromium: generous deadlines, two at a time
    // on the 2-core machines, and each test waits on conditions, never on fixed sleeps.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    pool: 'forks',
    reporters: ['default', './test/helpers/plainSummaryReporter.ts'],
  },
});
