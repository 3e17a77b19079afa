import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const workDir = join(repo, '.tmp', 'readme');

/** Names the README's snippets use without defining them, declared for the type check. */
const ambient: Record<string, string> = {
  EventEmitter: "import { EventEmitter } from 'node:events';",
  EventCoalescer: "import { EventCoalescer } from 'event-coalescer';",
  createEventCollector: "import { createEventCollector } from 'event-coalescer/collector';",
  createMemorySnapshotStore: "import { createMemorySnapshotStore } from 'event-coalescer/memory';",
  store: "declare const store: import('event-coalescer').SnapshotStore;",
  domains: "declare const domains: import('event-coalescer/collector').WorkspaceDomains;",
  sources: "declare const sources: import('event-coalescer/collector').Source[];",
  handler: "declare const handler: import('node:http').RequestListener;",
  githubWebhooks: "declare const githubWebhooks: import('node:events').EventEmitter;",
  broadcast: 'declare function broadcast(change: unknown): void;',
  fetchPullRequest:
    'declare function fetchPullRequest(id: string, options: { signal: AbortSignal }): Promise<{ number: number; state: string }>;',
  workspaceSnapshotSources: "import { workspaceSnapshotSources } from 'event-coalescer';",
  configureEventCollector: "import { configureEventCollector } from 'event-coalescer';",
  stopEventCollector: "import { stopEventCollector } from 'event-coalescer';",
  app: "declare const app: import('fastify').FastifyInstance;",
  WorkspaceSnapshotFields: "import type { WorkspaceSnapshotFields } from 'event-coalescer';",
  PrSnapshotUpdatedEvent: "import type { PrSnapshotUpdatedEvent } from 'event-coalescer';",
  WorkspaceStateChangedEvent: "import type { WorkspaceStateChangedEvent } from 'event-coalescer';",
  sessions: "declare const sessions: import('node:events').EventEmitter;",
  instrumentCoalescer: "import { instrumentCoalescer } from '../../examples/metrics.js';",
  collector: "declare const collector: import('event-coalescer').EventCollector;",
  workspaces: "declare const workspaces: import('node:events').EventEmitter;",
  rowToFields: 'declare function rowToFields(row: unknown): Record<string, unknown>;',
  db: `declare const db: {
  workspace: { find(id: string): Promise<unknown>; allIds(): Promise<string[]> };
  session: { workspaceOf(id: string): Promise<string | undefined> };
};`,
};

function snippets(readme: string): string[] {
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string);
}

/** Prepends what a snippet uses but neither imports nor declares itself. */
function withAmbient(snippet: string): string {
  const own = new Set(
    [...snippet.matchAll(/\b(?:import\s+(?:type\s+)?(\w+)|(?:const|let|function)\s+(\w+))/g)]
      .flatMap((m) => [m[1], m[2]])
      .concat(
        [...snippet.matchAll(/import\s*{([^}]*)}/g)].flatMap((m) =>
          (m[1] ?? '').split(',').map((n) =>
            n
              .trim()
              .split(/\s+as\s+/)
              .pop(),
          ),
        ),
      )
      .filter((name): name is string => Boolean(name)),
  );
  const prelude = Object.entries(ambient)
    .filter(([name]) => !own.has(name) && new RegExp(`\\b${name}\\b`).test(snippet))
    .map(([, line]) => line);
  return `${prelude.join('\n')}\n${snippet}\nexport {};\n`;
}

describe('README', () => {
  it('has TypeScript snippets, in the README and in docs/, that type-check against the package', async () => {
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    const docs = await Promise.all(
      (await readdir(join(repo, 'docs')))
        .filter((name) => name.endsWith('.md'))
        .map((name) => readFile(join(repo, 'docs', name), 'utf8')),
    );
    const blocks = [readme, ...docs].flatMap(snippets);
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    await rm(workDir, { recursive: true, force: true });
    await mkdir(workDir, { recursive: true });
    const files = await Promise.all(
      blocks.map(async (block, index) => {
        const file = `snippet-${index + 1}.ts`;
        await writeFile(join(workDir, file), withAmbient(block));
        return file;
      }),
    );
    await writeFile(
      join(workDir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.json',
        include: files,
        compilerOptions: { noUnusedLocals: false },
      }),
    );
    const result = await run('node', [
      join(repo, 'node_modules/typescript/bin/tsc'),
      '-p',
      workDir,
    ]).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result).toBe('');
  }, 60_000);

  it('has a first example of at most 15 lines that writes one merged patch per burst, as its comment says', async () => {
    const readme = await readFile(join(repo, 'README.md'), 'utf8');
    const [first] = snippets(readme);
    expect((first as string).trimEnd().split('\n').length).toBeLessThanOrEqual(15);
    const dir = join(workDir, 'first-example');
    await mkdir(dir, { recursive: true });
    // The same example, run against the built root with a memory store that records what it is given.
    await writeFile(
      join(dir, 'recording.ts'),
      [
        "export * from '../../../dist/index.js';",
        "import { createMemorySnapshotStore as createStore } from '../../../dist/index.js';",
        'export const upserts: unknown[] = [];',
        'export function createMemorySnapshotStore() {',
        '  const store = createStore();',
        '  const upsert = store.upsert;',
        '  store.upsert = (...args) => {',
        '    upserts.push(args.slice(0, 2));',
        '    return upsert(...args);',
        '  };',
        '  return store;',
        '}',
      ].join('\n'),
    );
    const example = (first as string).replace("from 'event-coalescer'", "from './recording.ts'");
    expect(example).toContain("from './recording.ts'");
    await writeFile(
      join(dir, 'example.ts'),
      `${example}\nimport { upserts } from './recording.ts';\nconsole.log(JSON.stringify(upserts));\n`,
    );
    const { stdout } = await run('node', ['--import', 'tsx', join(dir, 'example.ts')], {
      cwd: repo,
    });
    expect(JSON.parse(stdout)).toEqual([['ws-1', { ratchetState: 'FIXING' }]]);
  }, 30_000);
});
