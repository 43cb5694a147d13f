import { defineConfig } from 'vitest/config';

// Three tiers, one harness (test/helpers: startSmmapd in daemon.ts starts the daemon); README
// "Tests" says which is which.
//   unit: src in-process (the pure core, stores and sessions against a scripted IMAP
//     server); no build, none of the programs started, files in parallel.
//   integration: the built programs as processes, over real sockets, with the real peers
//     (Cyrus, Postfix, Sendmail, inetd, systemd): one file at a time.
//   load: load and soak runs (tens of seconds each), in their own tier.
// `npm test` runs them in that order; `vitest run --project NAME` runs one.
export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 10_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'load',
          include: ['test/load/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
