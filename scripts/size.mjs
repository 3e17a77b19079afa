// Size of each entry point as a bundler sees it: bundled, minified and gzipped.
// The package root is held to the 4 KB goal; the subpaths are printed for the record
// (each includes the core it builds on). Growth of the root past the goal fails.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const GOAL_BYTES = 4 * 1024;
const ENTRIES = ['index', 'collector', 'memory', 'redis'];

async function measure(entry) {
  const result = await build({
    entryPoints: [`dist/${entry}.js`],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    external: ['ioredis'],
    logLevel: 'error',
    write: false,
  });
  const minified = result.outputFiles[0].contents;
  return { minified: minified.length, gzipped: gzipSync(minified, { level: 9 }).length };
}

let rootGzipped = 0;
for (const entry of ENTRIES) {
  const { minified, gzipped } = await measure(entry);
  const name = entry === 'index' ? 'event-coalescer' : `event-coalescer/${entry}`;
  const note =
    entry !== 'index'
      ? ''
      : gzipped <= GOAL_BYTES
        ? ` — within the ${GOAL_BYTES} B goal`
        : ` — ${gzipped - GOAL_BYTES} B over the ${GOAL_BYTES} B goal`;
  console.log(
    `${name.padEnd(26)} ${String(minified).padStart(6)} B minified ${String(gzipped).padStart(5)} B gzipped${note}`,
  );
  if (entry === 'index') rootGzipped = gzipped;
}
if (rootGzipped > GOAL_BYTES) process.exit(1);
