/**
 * The live page's server: simulated domains → the collector → the memory store, and every
 * store change pushed to the browser over Server-Sent Events. node:http only, no framework.
 * The coalescer can be switched off (straight through: one store write per event) to see
 * the difference.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createEventCollector,
  createMemorySnapshotStore,
  type PatchSource,
  RATCHET_STATE_CHANGED,
  type SnapshotStore,
  type SourceAction,
  type WorkspaceSnapshotFields,
  workspaceSnapshotSources,
} from 'event-coalescer';
import { simulate } from './simulation.js';

export interface WebDemoOptions {
  port: number;
  host: string;
  workspaces: number;
  /** Simulated domain events per second; 0 sends none but the page's bursts. */
  rate: number;
  windowMs: number;
}

export interface WebDemoStats {
  eventsIn: number;
  writesOut: number;
  eventsPerWrite: number;
  latencyP50: number;
  latencyP99: number;
  coalescing: boolean;
}

const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
type Fields = WorkspaceSnapshotFields;

export async function startWebDemo(options: WebDemoOptions) {
  const store = createMemorySnapshotStore<Fields>();
  const domains = {
    workspaceStateMachine: new EventEmitter(),
    prSnapshotService: new EventEmitter(),
    ratchetService: new EventEmitter(),
    runScriptStateMachine: new EventEmitter(),
    workspaceActivityService: new EventEmitter(),
  };
  let coalescing = true;
  let eventsIn = 0;
  let writesOut = 0;
  /** When each event not yet written came, by workspace: its latency is measured at the write. */
  const unwritten = new Map<string, number[]>();
  const latencies: number[] = [];

  const measured = (workspaceId: string): void => {
    writesOut++;
    const now = performance.now();
    for (const at of unwritten.get(workspaceId) ?? []) latencies.push(now - at);
    unwritten.delete(workspaceId);
    if (latencies.length > 5000) latencies.splice(0, latencies.length - 5000);
  };
  const observed: SnapshotStore<Fields> = {
    upsert(workspaceId, fields, source) {
      measured(workspaceId);
      return store.upsert(workspaceId, fields, source);
    },
    getByWorkspaceId: (workspaceId) => store.getByWorkspaceId(workspaceId),
    remove(workspaceId) {
      measured(workspaceId);
      return store.remove(workspaceId);
    },
  };

  // Both paths listen; the switch decides which one acts on an event.
  const sources = workspaceSnapshotSources(domains) as PatchSource<Fields>[];
  const collector = createEventCollector<Fields>({
    store: observed,
    windowMs: options.windowMs,
    canCreate: () => true,
    sources: sources.map((source) => ({
      ...source,
      map: (...args: unknown[]) => (coalescing ? source.map(...args) : undefined),
    })),
  });
  const detachStraight: Array<() => void> = [];
  for (const source of sources) {
    const emitter = source.emitter as EventEmitter;
    const straight = (...args: unknown[]): void => {
      if (coalescing) return;
      const action = source.map(...args) as SourceAction<Fields> | undefined;
      if (action === undefined || action === null) return;
      const name = source.name ?? `event:${source.event}`;
      if ('remove' in action) void observed.remove(action.workspaceId);
      else void observed.upsert(action.workspaceId, action.fields, name);
    };
    emitter.on(source.event, straight);
    detachStraight.push(() => emitter.off(source.event, straight));
  }
  /** Every event the domains emit is counted, and its time kept for the latency. */
  for (const emitter of Object.values(domains)) {
    const emit = emitter.emit.bind(emitter);
    emitter.emit = (event: string | symbol, ...args: unknown[]) => {
      const payload = args[0] as { workspaceId?: string } | string | undefined;
      const workspaceId = typeof payload === 'string' ? payload : payload?.workspaceId;
      if (workspaceId !== undefined) {
        eventsIn++;
        const times = unwritten.get(workspaceId) ?? [];
        times.push(performance.now());
        unwritten.set(workspaceId, times);
      }
      return emit(event, ...args);
    };
  }

  const stats = (): WebDemoStats => {
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
    return {
      eventsIn,
      writesOut,
      eventsPerWrite: writesOut === 0 ? 0 : eventsIn / writesOut,
      latencyP50: Math.round(at(0.5)),
      latencyP99: Math.round(at(0.99)),
      coalescing,
    };
  };

  // --- Server-Sent Events ---------------------------------------------------------------
  const clients = new Set<ServerResponse>();
  const send = (client: ServerResponse, event: string, data: unknown): void => {
    client.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = (event: string, data: unknown): void => {
    for (const client of clients) send(client, event, data);
  };
  const unsubscribe = store.subscribe((change) => {
    if (change.type === 'remove') {
      broadcast('change', { type: 'remove', workspaceId: change.workspaceId });
    } else {
      // A change carries what changed; the card shows the whole entry.
      const entry = store.getByWorkspaceId(change.workspaceId);
      broadcast('change', {
        type: 'upsert',
        workspaceId: change.workspaceId,
        entry,
        changed: change.changed,
      });
    }
  });
  const statsTimer = setInterval(() => broadcast('stats', stats()), 250);

  const simulation = simulate(domains, {
    workspaces: options.workspaces,
    rate: options.rate,
    seed: (workspaceId) =>
      store.upsert(
        workspaceId,
        { projectId: 'demo', status: 'READY', isWorking: false },
        'reconcile',
      ),
  });

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method === 'GET' && url.pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (request.method === 'GET' && url.pathname === '/events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      clients.add(response);
      request.on('close', () => clients.delete(response));
      send(response, 'snapshot', store.getAll());
      send(response, 'stats', stats());
    } else if (request.method === 'GET' && url.pathname === '/stats') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats()));
    } else if (request.method === 'POST' && url.pathname === '/coalescing') {
      coalescing = url.searchParams.get('on') !== 'false';
      broadcast('stats', stats());
      response.writeHead(204).end();
    } else if (request.method === 'POST' && url.pathname === '/burst') {
      const workspaceId = url.searchParams.get('workspace') ?? simulation.pick();
      const events = Math.min(100, Math.max(1, Number(url.searchParams.get('events') ?? 5)));
      // One burst: the same event, a new state each time, in one tick.
      for (let i = 0; i < events; i++) {
        domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
          workspaceId,
          fromState: i % 2 ? 'FIXING' : 'CHECKING',
          toState: i % 2 ? 'CHECKING' : 'FIXING',
        });
      }
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ workspaceId, events }));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    stats,
    async close(): Promise<void> {
      simulation.stop();
      clearInterval(statsTimer);
      for (const client of clients) client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const detach of detachStraight) detach();
      await collector.stop();
      unsubscribe();
    },
  };
}
