import { copyFile, mkdir } from 'node:fs/promises';
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      collector: 'src/collector/index.ts',
      memory: 'src/stores/memory.ts',
      redis: 'src/stores/redis.ts',
      postgres: 'src/stores/postgres.ts',
    },
    // Shared chunks in CommonJS too, so every entry point sees the same EventCoalescer class.
    splitting: true,
    format: ['esm', 'cjs'],
    // Members marked @internal (the collector's hooks into its coalescer) stay out of the types.
    dts: { compilerOptions: { stripInternal: true } },
    target: 'node20',
    sourcemap: false,
    treeshake: true,
  },
  {
    // `npx event-coalescer`: the demo, importing the package by name as an installed one does.
    entry: { cli: 'examples/demo.ts' },
    outDir: 'dist/demo',
    format: ['esm'],
    splitting: true,
    external: [/^event-coalescer(\/|$)/, 'ioredis', 'pg'],
    banner: { js: '#!/usr/bin/env node' },
    target: 'node20',
    sourcemap: false,
    treeshake: true,
    async onSuccess() {
      await mkdir('dist/demo', { recursive: true });
      await copyFile('examples/web/index.html', 'dist/demo/index.html');
    },
  },
]);
