// The packed package under another runtime (Bun, Deno, any Node): plain JavaScript, the way a
// user's code imports it. Prints one JSON line: the runtime, its version, and each check.
import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import {
  createEventCollector,
  createMemorySnapshotStore,
  EventCoalescer,
  STORE_CHANNEL,
  WORKSPACE_ACTIVE,
  WORKSPACE_STATE_CHANGED,
  workspaceSnapshotSources,
} from 'event-coalescer';
import { createEventCollector as collectorFromSubpath } from 'event-coalescer/collector';
import { createMemorySnapshotStore as memoryFromSubpath } from 'event-coalescer/memory';
import { createPostgresSnapshotStore } from 'event-coalescer/postgres';
import { createRedisSnapshotStore } from 'event-coalescer/redis';

const runtime =
  typeof globalThis.Bun !== 'undefined'
    ? `bun ${globalThis.Bun.version}`
    : typeof globalThis.Deno !== 'undefined'
      ? `deno ${globalThis.Deno.version.deno}`
      : `node ${process.versions.node}`;
const checks = {};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The subpaths serve the root's functions; the Redis and PostgreSQL stores load without
// ioredis, redis or pg installed.
checks.subpaths =
  collectorFromSubpath === createEventCollector &&
  memoryFromSubpath === createMemorySnapshotStore &&
  typeof createRedisSnapshotStore === 'function' &&
  typeof createPostgresSnapshotStore === 'function';

// A burst of five events through the coalescer is one write, after the window.
{
  const store = createMemorySnapshotStore();
  const changes = [];
  store.subscribe((change) => changes.push(change));
  const coalescer = new EventCoalescer(store, { windowMs: 20, canCreate: () => true });
  for (let n = 1; n <= 5; n++) coalescer.enqueue('ws-1', { n }, 'smoke');
  const before = changes.length;
  await sleep(80);
  checks.coalescedBurst = before === 0 && changes.length === 1 && changes[0].entry.fields.n === 5;
  await coalescer.close();
}

// The collector with the workspace preset over node:events, stopped with its writes landed.
{
  const domains = {
    workspaceStateMachine: new EventEmitter(),
    prSnapshotService: new EventEmitter(),
    ratchetService: new EventEmitter(),
    runScriptStateMachine: new EventEmitter(),
    workspaceActivityService: new EventEmitter(),
  };
  const store = createMemorySnapshotStore();
  const collector = createEventCollector({
    store,
    canCreate: () => true,
    sources: workspaceSnapshotSources(domains),
  });
  domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
    workspaceId: 'ws-1',
    fromStatus: 'NEW',
    toStatus: 'READY',
  });
  domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, { workspaceId: 'ws-1' });
  await collector.stop();
  const entry = store.getByWorkspaceId('ws-1');
  checks.collectorPreset =
    entry?.version === 1 && entry.fields.status === 'READY' && entry.fields.isWorking === true;
  checks.detached = domains.workspaceStateMachine.listenerCount(WORKSPACE_STATE_CHANGED) === 0;
}

// The tracing channel, where the runtime has node:diagnostics_channel's tracingChannel.
if (typeof diagnosticsChannel.tracingChannel === 'function') {
  const seen = [];
  const channel = diagnosticsChannel.tracingChannel(STORE_CHANNEL);
  const handlers = {
    start: () => seen.push('start'),
    end: () => seen.push('end'),
    asyncStart: () => {},
    asyncEnd: () => {},
    error: () => {},
  };
  channel.subscribe(handlers);
  const coalescer = new EventCoalescer(createMemorySnapshotStore(), { canCreate: () => true });
  coalescer.enqueue('ws-1', { a: 1 }, 'smoke', { immediate: true });
  channel.unsubscribe(handlers);
  checks.tracingChannel = seen.join(',') === 'start,end';
} else {
  checks.tracingChannel = 'not available';
}

// `await using` needs Symbol.asyncDispose; the collector offers it either way.
checks.asyncDispose = typeof Symbol.asyncDispose === 'symbol' ? 'native' : 'not native';

console.log(JSON.stringify({ runtime, checks }));
