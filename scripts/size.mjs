// What a user pays, as a bundler sees it: the built package bundled by esbuild, tree-shaken
// (`sideEffects: false`), minified and gzipped. Two goals guard against bloat:
// - importing only `EventCoalescer` from the root: at most 12.5 KB;
// - the whole root (every export): at most 19 KB.
// The subpaths are printed for the record (each includes the core it builds on).
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const GOALS = { coalescerOnly: 12.5 * 1024, wholeRoot: 19 * 1024 };

async function measure(name, contents) {
  const result = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    minify: true,
    treeShaking: true,
    format: 'esm',
    platform: 'node',
    external: ['ioredis'],
    logLevel: 'error',
    write: false,
  });
  const code = result.outputFiles[0].contents;
  const gzipped = gzipSync(code, { level: 9 }).length;
  console.log(
    `${name.padEnd(44)} ${String(code.length).padStart(6)} B minified ${String(gzipped).padStart(5)} B gzipped`,
  );
  return gzipped;
}

const coalescerOnly = await measure(
  "import { EventCoalescer } from 'event-coalescer'",
  "export { EventCoalescer } from './dist/index.js';",
);
const wholeRoot = await measure(
  "import * from 'event-coalescer'",
  "export * from './dist/index.js';",
);
for (const subpath of ['collector', 'memory', 'redis']) {
  await measure(
    `import * from 'event-coalescer/${subpath}'`,
    `export * from './dist/${subpath}.js';`,
  );
}

let failed = false;
for (const [name, size] of Object.entries({ coalescerOnly, wholeRoot })) {
  const goal = GOALS[name];
  const verdict = size > goal ? `${size - goal} B over` : 'within';
  console.log(`size: ${name} is ${verdict} its ${goal} B goal`);
  if (size > goal) failed = true;
}
if (failed) process.exit(1);
