import { defineConfig } from 'vitest/config';

/** Suites that start servers, browsers or processes, or install the packed package. */
const integration = [
  'test/redis-*.test.ts',
  'test/postgres-*.test.ts',
  'test/replicas.test.ts',
  'test/web.test.ts',
  'test/web-server.test.ts',
  'test/package.test.ts',
  'test/demo.test.ts',
  'test/readme.test.ts',
  'test/readme-recipes.test.ts',
];

// `npm test` runs every project; `npm run test:unit` the quick one.
export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/store-matchers.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/*.test.ts'], exclude: integration } },
      { extends: true, test: { name: 'integration', include: integration } },
      {
        extends: true,
        // Type tests are compiled, never run: a wrong type or an unused @ts-expect-error fails.
        test: {
          name: 'types',
          include: [],
          typecheck: { enabled: true, only: true, include: ['test/*.test-d.ts'] },
        },
      },
    ],
  },
});
