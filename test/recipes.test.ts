import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { eventCollectorPlugin } from '../examples/fastify.js';
import { instrumentCoalescer } from '../examples/metrics.js';
import { workspaceRoutes } from '../examples/read-your-writes.js';
import { type Span, traceStoreCalls } from '../examples/spans.js';
import {
  createEventCollector,
  createMemorySnapshotStore,
  EventCoalescer,
  type MemorySnapshotStore,
  type SnapshotStore,
} from '../src/index.js';

/** A memory store whose upserts answer asynchronously, and fail when `fail` says so. */
function asyncStore(fail: (call: number) => boolean = () => false) {
  const memory = createMemorySnapshotStore();
  let calls = 0;
  const store: SnapshotStore = {
    upsert: async (id, fields, source) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (fail(++calls)) throw new Error('store down');
      memory.upsert(id, fields, source);
    },
    getByWorkspaceId: (id) => memory.getByWorkspaceId(id),
    remove: (id) => memory.remove(id),
  };
  return { store, memory };
}

describe('the prom-client recipe (examples/metrics.ts)', () => {
  it('exposes stats() as counters and gauges, store-call durations and events per write', async () => {
    const registry = new Registry();
    const { store } = asyncStore((call) => call === 1);
    const coalescer = new EventCoalescer(store, {
      windowMs: 5,
      canCreate: () => true,
      retry: { attempts: 2, delayMs: 5, jitter: 0 },
    });
    const stop = instrumentCoalescer(coalescer, registry);
    try {
      for (let i = 0; i < 5; i++) coalescer.enqueue('ws-1', { i }, 's');
      for (let i = 0; i < 3; i++) coalescer.enqueue('ws-2', { i }, 's');
      await new Promise((resolve) => setTimeout(resolve, 10));
      await coalescer.flushAll();
      await new Promise((resolve) => setTimeout(resolve, 30));
      await coalescer.close();
      const text = await registry.metrics();
      expect(text).toMatch(/^event_coalescer_enqueued_total 8$/m);
      expect(text).toMatch(/^event_coalescer_flushed_total 2$/m);
      expect(text).toMatch(/^event_coalescer_retried_total 1$/m);
      expect(text).toMatch(/^event_coalescer_in_flight 0$/m);
      expect(text).toMatch(/^event_coalescer_events_per_write 4$/m);
      expect(text).toMatch(
        /^event_coalescer_store_call_duration_seconds_count\{operation="upsert",outcome="ok"\} 2$/m,
      );
      expect(text).toMatch(
        /^event_coalescer_store_call_duration_seconds_count\{operation="upsert",outcome="error"\} 1$/m,
      );
      // A second scrape adds nothing that did not happen.
      expect(await registry.metrics()).toMatch(/^event_coalescer_enqueued_total 8$/m);
    } finally {
      stop();
    }
  });
});

describe('the span recipe (examples/spans.ts)', () => {
  it('exports one span per store call, failed ones with an error status', async () => {
    const spans: Span[] = [];
    const stop = traceStoreCalls((span) => spans.push(span));
    try {
      const { store } = asyncStore((call) => call === 1);
      const coalescer = new EventCoalescer(store, {
        canCreate: () => true,
        retry: { attempts: 2, delayMs: 5, jitter: 0 },
      });
      coalescer.enqueue('ws-1', { a: 1 }, 'event:x', { immediate: true });
      await new Promise((resolve) => setTimeout(resolve, 30));
      await coalescer.close();
      expect(spans.map((span) => [span.name, span.attributes, span.status.code])).toEqual([
        [
          'event-coalescer upsert',
          { 'workspace.id': 'ws-1', 'coalescer.source': 'event:x', 'coalescer.attempt': 1 },
          'ERROR',
        ],
        [
          'event-coalescer upsert',
          { 'workspace.id': 'ws-1', 'coalescer.source': 'event:x', 'coalescer.attempt': 2 },
          'OK',
        ],
      ]);
      for (const span of spans) expect(span.endTime).toBeGreaterThanOrEqual(span.startTime);
    } finally {
      stop();
    }
  });
});

/** A Fastify app with the recipe's plugin, one domain emitter and an asynchronous store. */
async function fastifyHost() {
  const { default: Fastify } = await import('fastify');
  const domain = new EventEmitter();
  const { store, memory } = asyncStore();
  const app = Fastify();
  await app.register(eventCollectorPlugin, {
    deps: {
      store,
      canCreate: () => true,
      sources: [
        {
          emitter: domain,
          event: 'changed',
          map: (workspaceId: string, n: number) => ({ workspaceId, fields: { n } }),
        },
      ],
    },
  });
  return { app, domain, memory };
}

/**
 * A host's WebSocket side on `server`: every store change pushed to every client. `letGo` closes
 * the clients, as a host does on shutdown.
 */
async function pushingSockets(server: Server, memory: MemorySnapshotStore) {
  const { WebSocketServer } = await import('ws');
  const sockets = new WebSocketServer({ server });
  memory.subscribe((change) => {
    const fields = change.type === 'upsert' ? change.entry.fields : null;
    for (const socket of sockets.clients) socket.send(JSON.stringify(fields));
  });
  const letGo = (): void => {
    for (const socket of sockets.clients) socket.close(1001, 'server closing');
    sockets.close();
  };
  return { letGo };
}

/** A WebSocket client of `server`, connected, keeping what it receives until it is closed. */
async function connectedClient(server: Server) {
  const { WebSocket } = await import('ws');
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  const received: unknown[] = [];
  client.on('message', (data) => received.push(JSON.parse(String(data))));
  const closed = new Promise((resolve) => client.once('close', resolve));
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  return { received, closed };
}

describe('the Fastify recipe (examples/fastify.ts)', () => {
  it('starts the collector when ready, and lands the merged write before close() resolves', async () => {
    const { app, domain, memory } = await fastifyHost();
    await app.ready();
    for (let n = 1; n <= 5; n++) domain.emit('changed', 'ws-1', n);
    expect(memory.getByWorkspaceId('ws-1')).toBeUndefined();
    await app.close();
    expect(memory.getByWorkspaceId('ws-1')).toMatchObject({ fields: { n: 5 }, version: 1 });
    expect(domain.listenerCount('changed')).toBe(0);
  });

  it('flushes while WebSocket clients are connected, and they get the final push before their sockets close', async () => {
    const { app, domain, memory } = await fastifyHost();
    const { letGo } = await pushingSockets(app.server, memory);
    // A host hook added after the plugin lets the clients go.
    app.addHook('preClose', async () => letGo());
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { received, closed } = await connectedClient(app.server);
    for (let n = 1; n <= 5; n++) domain.emit('changed', 'ws-1', n);
    await app.close();
    await closed;
    expect(memory.getByWorkspaceId('ws-1')?.fields).toEqual({ n: 5 });
    expect(received).toEqual([{ n: 5 }]);
  });
});

describe('the NestJS recipe (examples/nestjs.ts)', () => {
  it('starts the collector with the module, and lands the merged write before app.close() resolves', async () => {
    const { NestFactory } = await import('@nestjs/core');
    const { eventCollectorModule } = await import('../examples/nestjs.js');
    const domain = new EventEmitter();
    const { store, memory } = asyncStore();
    const app = await NestFactory.createApplicationContext(
      eventCollectorModule({
        store,
        canCreate: () => true,
        sources: [
          {
            emitter: domain,
            event: 'changed',
            map: (workspaceId: string, n: number) => ({ workspaceId, fields: { n } }),
          },
        ],
      }),
      { logger: false },
    );
    app.enableShutdownHooks();
    for (let n = 1; n <= 5; n++) domain.emit('changed', 'ws-1', n);
    expect(memory.getByWorkspaceId('ws-1')).toBeUndefined();
    await app.close();
    expect(memory.getByWorkspaceId('ws-1')).toMatchObject({ fields: { n: 5 }, version: 1 });
    expect(domain.listenerCount('changed')).toBe(0);
  });
});

describe('the NestJS recipe with an HTTP server and WebSocket clients', () => {
  it('flushes before Nest closes its server and gateways, so clients get the final push', async () => {
    const { NestFactory } = await import('@nestjs/core');
    const { eventCollectorModule } = await import('../examples/nestjs.js');
    const domain = new EventEmitter();
    const { store, memory } = asyncStore();
    const app = await NestFactory.create(
      eventCollectorModule({
        store,
        canCreate: () => true,
        sources: [
          {
            emitter: domain,
            event: 'changed',
            map: (workspaceId: string, n: number) => ({ workspaceId, fields: { n } }),
          },
        ],
      }),
      { logger: false },
    );
    // Like a Nest gateway, the host's socket server lets its clients go as Nest closes the server.
    const { letGo } = await pushingSockets(app.getHttpServer(), memory);
    const adapter = app.getHttpAdapter();
    const closeServer = adapter.close.bind(adapter);
    adapter.close = () => {
      letGo();
      return closeServer();
    };
    await app.listen(0, '127.0.0.1');
    const { received, closed } = await connectedClient(app.getHttpServer());
    for (let n = 1; n <= 5; n++) domain.emit('changed', 'ws-1', n);
    await app.close();
    await closed;
    expect(memory.getByWorkspaceId('ws-1')?.fields).toEqual({ n: 5 });
    expect(received).toEqual([{ n: 5 }]);
  });
});

describe('the read-your-writes recipe (examples/read-your-writes.ts)', () => {
  it('serves the store with what is accepted on top, and answers a PATCH once it has landed', async () => {
    const { store, memory } = asyncStore();
    const collector = createEventCollector({
      store,
      windowMs: 50,
      canCreate: () => true,
      sources: [],
    });
    const server = createServer(workspaceRoutes(collector, memory));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/workspaces/ws-1`;
    try {
      memory.upsert('ws-1', { title: 'old', status: 'READY' }, 'seed');
      collector.coalescer.enqueue('ws-1', { title: 'new' }, 'api');
      // Not written yet, read anyway: the accepted title over the stored status.
      expect(memory.getByWorkspaceId('ws-1')?.fields.title).toBe('old');
      expect(await (await fetch(url)).json()).toEqual({ title: 'new', status: 'READY' });

      const started = performance.now();
      const saved = await fetch(url, { method: 'PATCH', body: JSON.stringify({ status: 'BUSY' }) });
      expect(saved.status).toBe(200);
      expect(await saved.json()).toEqual({ outcome: 'landed' });
      // Answered after the window, once the one merged write landed.
      expect(performance.now() - started).toBeGreaterThanOrEqual(45);
      expect(memory.getByWorkspaceId('ws-1')?.fields).toEqual({ title: 'new', status: 'BUSY' });
      expect((await fetch(url.replace('ws-1', 'ws-9'))).status).toBe(404);
    } finally {
      server.close();
      await collector.stop();
    }
  });
});
