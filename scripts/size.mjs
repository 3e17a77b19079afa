// Size budget: the package root's ESM bundle, minified and gzipped, must stay within 4 KB.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET_BYTES = 4 * 1024;
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
const verdict = gzipped <= BUDGET_BYTES ? 'within' : 'OVER';
console.log(
  `size: ${minified.length} B minified, ${gzipped} B gzipped — ${verdict} the ${BUDGET_BYTES} B budget`,
);
if (gzipped > BUDGET_BYTES) process.exit(1);
