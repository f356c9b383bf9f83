import { defineConfig } from 'vitest/config';

/** Test tiers, one project each (docs/architecture.md#tests). */
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: 120_000,
          // Synth (with cdk-nag) is the tier's cost: files in one worker share its module cache, so each worker
          // synthesizes a stage once (test/infra/template.ts), not once per file.
          isolate: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // DynamoDB Local + KMS emulator with the tables of the synthesized template (no bundling).
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The whole local cloud from the bundled template (synthesizes when cdk.out is stale).
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
