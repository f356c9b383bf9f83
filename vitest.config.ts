import { defineConfig } from 'vitest/config';

/** Test tiers, one project each (docs/architecture.md#tests). */
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
    ],
  },
});
