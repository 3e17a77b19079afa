import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

/** The package as npm users get it: packed, then installed from the tarball, offline. */
let project: string;

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'event-coalescer-consumer-'));
  await run('npm', ['pack', '--silent', '--pack-destination', project], { cwd: repo });
  const tarball = (await readdir(project)).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack produced no tarball');
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true }),
  );
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', `./${tarball}`], {
    cwd: project,
  });
}, 120_000);

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

const consumerTs = `
import { EventEmitter } from 'node:events';
import { createRedisSnapshotStore } from 'event-coalescer/redis';
import { createPostgresSnapshotStore, type PostgresPool } from 'event-coalescer/postgres';
import { EventCoalescer } from 'event-coalescer';
import { createEventCollector, type WorkspaceSnapshotFields, workspaceSnapshotSources } from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';

const store = createMemorySnapshotStore<WorkspaceSnapshotFields>();
const coalescer = new EventCoalescer(store, { windowMs: 50 });
coalescer.enqueue('ws-1', { status: 'READY', isWorking: true }, 'event:a');
const emitter = new EventEmitter();
const collector = createEventCollector({
  store,
  sources: workspaceSnapshotSources({
    workspaceStateMachine: emitter,
    prSnapshotService: emitter,
    ratchetService: emitter,
    runScriptStateMachine: emitter,
    workspaceActivityService: emitter,
  }),
});
export const receipt: Promise<'landed' | 'skipped'> = collector.settled('ws-1');
export const accepted: Partial<WorkspaceSnapshotFields> | undefined = coalescer.peek('ws-1');
// @ts-expect-error the collector's hooks into its coalescer are not in the published types
coalescer.countInvalid();
// @ts-expect-error
coalescer.reportError;
// @ts-expect-error
coalescer.giveUp;
// @ts-expect-error
coalescer.options;
export const done: Promise<void> = collector.stop();
export const redisFactory: typeof createRedisSnapshotStore = createRedisSnapshotStore;
export const postgresStore = (pool: PostgresPool) => createPostgresSnapshotStore<WorkspaceSnapshotFields>(pool, { table: 'boards' });
`;

async function typecheck(module: string, moduleResolution: string): Promise<void> {
  await writeFile(join(project, 'consumer.ts'), consumerTs);
  await run(
    'node',
    [
      tsc,
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      module,
      '--moduleResolution',
      moduleResolution,
      '--types',
      'node',
      '--typeRoots',
      join(repo, 'node_modules', '@types'),
      'consumer.ts',
    ],
    { cwd: project },
  );
}

describe('the packed package', () => {
  it('is required from a CommonJS file', async () => {
    await writeFile(
      join(project, 'consumer.cjs'),
      `const { EventCoalescer } = require('event-coalescer');
const { createMemorySnapshotStore } = require('event-coalescer/memory');
const store = createMemorySnapshotStore();
const coalescer = new EventCoalescer(store, { canCreate: () => true });
coalescer.enqueue('ws-1', { a: 1 }, 'cjs', { immediate: true });
console.log(JSON.stringify(store.getByWorkspaceId('ws-1').fields));`,
    );
    const { stdout } = await run('node', ['consumer.cjs'], { cwd: project });
    expect(stdout.trim()).toBe('{"a":1}');
  });

  it('is imported from an ES module file', async () => {
    await writeFile(
      join(project, 'consumer.mjs'),
      `import { EventCoalescer } from 'event-coalescer';
import { WORKSPACE_IDLE } from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';
const store = createMemorySnapshotStore();
const coalescer = new EventCoalescer(store, { canCreate: () => true });
coalescer.enqueue('ws-1', { a: 2 }, 'esm', { immediate: true });
console.log(JSON.stringify(store.getByWorkspaceId('ws-1').fields), WORKSPACE_IDLE);`,
    );
    const { stdout } = await run('node', ['consumer.mjs'], { cwd: project });
    expect(stdout.trim()).toBe('{"a":2} workspace_idle');
  });

  it('shares one EventCoalescer class between the root and the collector, in both module systems', async () => {
    const check = (load: string) => `${load}
const collector = createEventCollector({ store: createMemorySnapshotStore(), sources: [] });
console.log(collector.coalescer instanceof EventCoalescer);`;
    await writeFile(
      join(project, 'shared.cjs'),
      check(`const { EventCoalescer } = require('event-coalescer');
const { createEventCollector } = require('event-coalescer/collector');
const { createMemorySnapshotStore } = require('event-coalescer/memory');`),
    );
    await writeFile(
      join(project, 'shared.mjs'),
      check(`import { EventCoalescer } from 'event-coalescer';
import { createEventCollector } from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';`),
    );
    for (const file of ['shared.cjs', 'shared.mjs']) {
      const { stdout } = await run('node', [file], { cwd: project });
      expect(stdout.trim(), file).toBe('true');
    }
  });

  it('serves the whole in-process API from the root, in ES modules and CommonJS', async () => {
    const names = [
      'EventCoalescer',
      'createEventCollector',
      'configureEventCollector',
      'stopEventCollector',
      'workspaceSnapshotSources',
      'createMemorySnapshotStore',
      'WORKSPACE_STATE_CHANGED',
      'PR_SNAPSHOT_UPDATED',
      'RATCHET_STATE_CHANGED',
      'RUN_SCRIPT_STATUS_CHANGED',
      'WORKSPACE_ACTIVE',
      'WORKSPACE_IDLE',
    ];
    const show = `console.log(JSON.stringify(${JSON.stringify(names)}.map((name) => typeof root[name])));`;
    await writeFile(join(project, 'root.cjs'), `const root = require('event-coalescer');\n${show}`);
    await writeFile(join(project, 'root.mjs'), `import * as root from 'event-coalescer';\n${show}`);
    const kinds = names.map((name) => (name.toUpperCase() === name ? 'string' : 'function'));
    for (const file of ['root.cjs', 'root.mjs']) {
      const { stdout } = await run('node', [file], { cwd: project });
      expect(JSON.parse(stdout), file).toEqual(kinds);
    }
    await writeFile(
      join(project, 'hooks.mjs'),
      `import { EventEmitter } from 'node:events';
import { configureEventCollector, createMemorySnapshotStore, stopEventCollector, EventCoalescer } from 'event-coalescer';
import { createEventCollector } from 'event-coalescer/collector';
const store = createMemorySnapshotStore();
const emitter = new EventEmitter();
const collector = configureEventCollector({ store, canCreate: () => true,
  sources: [{ emitter, event: 'x', map: (id) => ({ workspaceId: id, fields: { n: 1 } }) }] });
emitter.emit('x', 'ws-1');
await stopEventCollector();
const other = createEventCollector({ store, sources: [] });
console.log(store.getByWorkspaceId('ws-1').fields.n, collector.coalescer instanceof EventCoalescer, other.coalescer instanceof EventCoalescer);`,
    );
    const { stdout } = await run('node', ['hooks.mjs'], { cwd: project });
    expect(stdout.trim()).toBe('1 true true');
  });

  it('serves the Redis store from event-coalescer/redis, without ioredis installed', async () => {
    await writeFile(
      join(project, 'redis.cjs'),
      `const { createRedisSnapshotStore } = require('event-coalescer/redis');
import('event-coalescer/redis').then((esm) => console.log(typeof createRedisSnapshotStore, typeof esm.createRedisSnapshotStore));`,
    );
    const { stdout } = await run('node', ['redis.cjs'], { cwd: project });
    expect(stdout.trim()).toBe('function function');
  });

  it('serves the PostgreSQL store from event-coalescer/postgres, without pg installed', async () => {
    await writeFile(
      join(project, 'postgres.cjs'),
      `const { createPostgresSnapshotStore } = require('event-coalescer/postgres');
import('event-coalescer/postgres').then((esm) => console.log(typeof createPostgresSnapshotStore, typeof esm.createPostgresSnapshotStore));`,
    );
    const { stdout } = await run('node', ['postgres.cjs'], { cwd: project });
    expect(stdout.trim()).toBe('function function');
  });

  it('keeps Redis and PostgreSQL out of the package root', async () => {
    const root = join(project, 'node_modules', 'event-coalescer', 'dist');
    for (const file of ['index.js', 'index.cjs']) {
      const source = await readFile(join(root, file), 'utf8');
      expect(source).not.toMatch(/ioredis|redis-store|evalsha|pg_notify|jsonb/);
    }
  });

  it('type-checks under moduleResolution node16', async () => {
    await expect(typecheck('node16', 'node16')).resolves.toBeUndefined();
  }, 60_000);

  it('type-checks under moduleResolution bundler', async () => {
    await expect(typecheck('esnext', 'bundler')).resolves.toBeUndefined();
  }, 60_000);

  it('runs the terminal demo with npx, no clone and no dev dependencies', async () => {
    const { stdout } = await run('npx', ['--offline', 'event-coalescer', '--duration', '1'], {
      cwd: project,
    });
    expect(stdout).toMatch(/events in: +\d+/);
    expect(stdout).toMatch(/writes out: +\d+/);
    expect(stdout).toMatch(/coalescing ratio: +[\d.]+ events per write/);
  }, 60_000);

  it('serves the live page with npx event-coalescer --web', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(
      join(project, 'node_modules', '.bin', 'event-coalescer'),
      ['--web', '--port', '0', '--duration', '2', '--rate', '50'],
      { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const firstLine = await new Promise<string>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`exited with ${code} before printing its URL`)));
      child.stdout.on('data', (chunk: Buffer) => {
        output += String(chunk);
        if (output.includes('\n')) resolve(output.split('\n')[0] as string);
      });
    });
    expect(firstLine).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(firstLine)).text();
    expect(html).toContain('<title>event-coalescer — live snapshot</title>');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
  }, 30_000);

  it('ships every file the README and docs link to, and every anchor they link to exists', async () => {
    const installed = join(project, 'node_modules', 'event-coalescer');
    const documents = [
      'README.md',
      ...(await readdir(join(installed, 'docs')))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
    ];
    const slug = (heading: string) =>
      heading
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-');
    const anchorsOf = (text: string) =>
      new Set([
        ...[...text.matchAll(/^#{1,4} (.+)$/gm)].map((m) => slug(m[1] as string)),
        ...[...text.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1] as string),
      ]);
    const broken: string[] = [];
    let checked = 0;
    for (const document of documents) {
      const text = await readFile(join(installed, document), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^https?:/.test(target as string)) continue;
        checked++;
        const [path, anchor] = (target as string).split('#');
        const file = path === '' ? document : join(dirname(document), path as string);
        const content = await readFile(join(installed, file), 'utf8').catch(() => undefined);
        if (content === undefined) broken.push(`${document}: ${target} (no such file)`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(content).has(anchor)) {
          broken.push(`${document}: ${target} (no such anchor)`);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(broken).toEqual([]);
  });

  it('ships no runtime dependencies and only what users need', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: repo });
    const [packed] = JSON.parse(stdout) as [{ files: { path: string }[] }];
    const paths = packed.files.map((file) => file.path).sort();
    expect(
      paths.every((path) =>
        /^(dist\/|docs\/|examples\/[a-z-]+\.ts$|README\.md|LICENSE|CHANGELOG\.md|package\.json)/.test(
          path,
        ),
      ),
    ).toBe(true);
    const manifest = JSON.parse(
      (await run('node', ['-p', 'JSON.stringify(require("./package.json"))'], { cwd: repo }))
        .stdout,
    ) as { dependencies?: Record<string, string> };
    expect(manifest.dependencies ?? {}).toEqual({});
  });
});
