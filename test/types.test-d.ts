/**
 * Type tests, compiled and never run (the `types` project of vitest, and `npm run typecheck`):
 * a wrong type or a `@ts-expect-error` that is not an error fails the run.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { describe, expectTypeOf, it } from 'vitest';
import {
  createEventCollector,
  type PatchSource,
  type WorkspaceSnapshotFields,
  workspaceSnapshotSources,
} from '../src/collector/index.js';
import {
  type CoalescerOptions,
  type ErrorContext,
  EventCoalescer,
  type SnapshotEntry,
} from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { createPostgresSnapshotStore } from '../src/stores/postgres.js';

interface Board {
  title: string;
  count: number;
  archivedAt: Date | null;
}

describe('types', () => {
  it('makes a listener handle the reset of a change feed before it reads a workspace', () => {
    const store = createMemorySnapshotStore<Board>();
    store.subscribe(
      (change) => {
        expectTypeOf(change.id).toEqualTypeOf<string>();
        // @ts-expect-error a reset has no workspace
        change.workspaceId;
        if (change.type === 'reset') return;
        expectTypeOf(change.workspaceId).toEqualTypeOf<string>();
        if (change.type === 'upsert')
          expectTypeOf(change.entry.fields.title).toEqualTypeOf<string | undefined>();
      },
      { since: store.position() },
    );
    // @ts-expect-error since is a position, a string
    store.subscribe(() => {}, { since: 42 });
  });

  it('checks field names and value types of EventCoalescer<F>', () => {
    const store = createMemorySnapshotStore<Board>();
    const coalescer = new EventCoalescer<Board>(store);
    coalescer.enqueue('ws-1', { title: 'x', count: undefined }, 's');
    coalescer.enqueue('ws-1', { archivedAt: null }, 's');
    // @ts-expect-error: not a field of Board
    coalescer.enqueue('ws-1', { titel: 'x' }, 's');
    // @ts-expect-error: count is a number
    coalescer.enqueue('ws-1', { count: 'many' }, 's');
    expectTypeOf(store.getByWorkspaceId('ws-1')).toEqualTypeOf<SnapshotEntry<Board> | undefined>();
  });

  it('infers the fields type from a typed store', () => {
    const coalescer = new EventCoalescer(createMemorySnapshotStore<Board>());
    expectTypeOf(coalescer).toEqualTypeOf<EventCoalescer<Board>>();
    // @ts-expect-error: not a field of Board
    coalescer.enqueue('ws-1', { nope: 1 }, 's');
  });

  it('accepts any field without a type argument', () => {
    const coalescer = new EventCoalescer(createMemorySnapshotStore());
    coalescer.enqueue('ws-1', { anything: 1, goes: [1] }, 's');
  });

  it('requires a source map to return fields of the collector type', () => {
    const emitter = new EventEmitter();
    const good: PatchSource<Board> = {
      emitter,
      event: 'x',
      map: (id: string) => ({ workspaceId: id, fields: { count: 1 } }),
    };
    const bad: PatchSource<Board> = {
      emitter,
      event: 'x',
      // @ts-expect-error: count is a number
      map: (id: string) => ({ workspaceId: id, fields: { count: 'one' } }),
    };
    createEventCollector<Board>({
      store: createMemorySnapshotStore<Board>(),
      sources: [good, bad],
    });
  });

  it('types the workspace preset by WorkspaceSnapshotFields', () => {
    const emitter = new EventEmitter();
    const domains = {
      workspaceStateMachine: emitter,
      prSnapshotService: emitter,
      ratchetService: emitter,
      runScriptStateMachine: emitter,
      workspaceActivityService: emitter,
    };
    expectTypeOf(workspaceSnapshotSources(domains)).toEqualTypeOf<
      PatchSource<WorkspaceSnapshotFields>[]
    >();
    const misspelled: PatchSource<WorkspaceSnapshotFields> = {
      emitter,
      event: 'workspace_active',
      // @ts-expect-error: isWorkin is not a snapshot field
      map: (id: string) => ({ workspaceId: id, fields: { isWorkin: true } }),
    };
    expectTypeOf(misspelled).toEqualTypeOf<PatchSource<WorkspaceSnapshotFields>>();
  });

  it('discriminates onError context by operation', () => {
    const onError = (_error: unknown, context: ErrorContext<Board>) => {
      if (context.operation === 'upsert') {
        expectTypeOf(context.fields).toEqualTypeOf<
          Partial<{ [K in keyof Board]: Board[K] | undefined }>
        >();
        expectTypeOf(context.workspaceId).toEqualTypeOf<string>();
      } else if (context.operation === 'remove') {
        expectTypeOf(context).toEqualTypeOf<{ operation: 'remove'; workspaceId: string }>();
        // @ts-expect-error: a removal carries no fields
        void context.fields;
      } else if (context.operation === 'map') {
        expectTypeOf(context.workspaceId).toEqualTypeOf<string | undefined>();
      }
    };
    new EventCoalescer<Board>(createMemorySnapshotStore<Board>(), { onError });
  });

  it('keeps options exactOptionalPropertyTypes-clean', () => {
    const options: CoalescerOptions = { windowMs: 10 };
    // @ts-expect-error: an absent option is omitted, not undefined
    const explicit: CoalescerOptions = { windowMs: undefined };
    expectTypeOf(options).toEqualTypeOf<CoalescerOptions>();
    void explicit;
  });

  it('takes windows of their own on sources, actions, enqueues and preset events', () => {
    const emitter = new EventEmitter();
    const source: PatchSource = {
      emitter,
      event: 'e',
      windowMs: 20,
      maxWaitMs: 100,
      map: () => ({ workspaceId: 'ws-1', fields: {}, windowMs: 5 }),
    };
    // @ts-expect-error: a window is a number of milliseconds
    const wrong: PatchSource = { emitter, event: 'e', windowMs: '20', map: () => undefined };
    void wrong;
    new EventCoalescer(createMemorySnapshotStore()).enqueue('ws-1', {}, 's', { windowMs: 5 });
    workspaceSnapshotSources(
      {
        workspaceStateMachine: emitter,
        prSnapshotService: emitter,
        ratchetService: emitter,
        runScriptStateMachine: emitter,
        workspaceActivityService: emitter,
      },
      // @ts-expect-error: not an event of the preset
      { windowMs: { workspaceActive: 1000, workspaceActiv: 1000 } },
    );
    void source;
  });
});

describe('createPostgresSnapshotStore', () => {
  it('takes a pg.Pool as it is, and types entries by the snapshot fields', () => {
    const store = createPostgresSnapshotStore<WorkspaceSnapshotFields>(new pg.Pool());
    expectTypeOf(store.getByWorkspaceId('ws-1')).resolves.toEqualTypeOf<
      SnapshotEntry<WorkspaceSnapshotFields> | undefined
    >();
    new EventCoalescer<WorkspaceSnapshotFields>(store, { timestamps: true });
    // @ts-expect-error the feed needs connect() for its LISTEN connection
    createPostgresSnapshotStore({ query: async () => ({ rows: [] }) });
  });
});
