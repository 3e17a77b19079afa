import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    collector: 'src/collector/index.ts',
    memory: 'src/stores/memory.ts',
    redis: 'src/stores/redis.ts',
  },
  // Shared chunks in CommonJS too, so every entry point sees the same EventCoalescer class.
  splitting: true,
  format: ['esm', 'cjs'],
  // Members marked @internal (the collector's hooks into its coalescer) stay out of the types.
  dts: { compilerOptions: { stripInternal: true } },
  clean: true,
  target: 'node20',
  sourcemap: false,
  treeshake: true,
});
