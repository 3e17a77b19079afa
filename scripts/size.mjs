// Size of the package root as a bundler sees it: dist/index.js bundled, minified and gzipped.
// Prints the figure against the 4 KB goal, and fails when it grows past the ceiling, so that
// growth is a decision rather than an accident.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const GOAL_BYTES = 4 * 1024;
const CEILING_BYTES = 6400;

const result = await build({
  entryPoints: ['dist/index.js'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'node',
  write: false,
});
const minified = result.outputFiles[0].contents;
const gzipped = gzipSync(minified, { level: 9 }).length;
const againstGoal =
  gzipped <= GOAL_BYTES
    ? `within the ${GOAL_BYTES} B goal`
    : `${gzipped - GOAL_BYTES} B over the ${GOAL_BYTES} B goal`;
console.log(`size: ${minified.length} B minified, ${gzipped} B gzipped — ${againstGoal}`);
if (gzipped > CEILING_BYTES) {
  console.error(`size: past the ${CEILING_BYTES} B ceiling`);
  process.exit(1);
}
