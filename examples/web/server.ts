/**
 * The live page's server: simulated domains → the collector → a store (the memory store, or
 * any with a change feed: PostgreSQL, Redis), and every store change pushed to the browser
 * over Server-Sent Events. node:http only, no framework.
 * The coalescer can be switched off (straight through: one store write per event) to see
 * the difference.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createEventCollector,
  createMemorySnapshotStore,
  type PatchSource,
  RATCHET_STATE_CHANGED,
  type SnapshotChange,
  type SnapshotEntry,
  type SnapshotStore,
  type SourceAction,
  type WorkspaceSnapshotFields,
  workspaceSnapshotSources,
} from 'event-coalescer';
import { closeWithin, createBoundedServer, parseTarget } from './bounded-server.js';
import { EventStream } from './event-stream.js';
import { simulate } from './simulation.js';

/** What the page needs of a store: the contract, reading, and a feed with positions. */
export interface LiveStore extends SnapshotStore<WorkspaceSnapshotFields> {
  getByWorkspaceId(
    workspaceId: string,
  ):
    | SnapshotEntry<WorkspaceSnapshotFields>
    | undefined
    | Promise<SnapshotEntry<WorkspaceSnapshotFields> | undefined>;
  getAll():
    | SnapshotEntry<WorkspaceSnapshotFields>[]
    | Promise<SnapshotEntry<WorkspaceSnapshotFields>[]>;
  position(): string | Promise<string>;
  subscribe(
    listener: (change: SnapshotChange<WorkspaceSnapshotFields>) => void,
    options?: { since?: string },
  ): () => void;
}

export interface WebDemoOptions {
  /** Where the snapshot is kept (default: a memory store of its own). */
  store?: LiveStore;
  port: number;
  host: string;
  workspaces: number;
  /** Simulated domain events per second; 0 sends none but the page's bursts. */
  rate: number;
  windowMs: number;
  /** Live pages served at once (default 200); one more is answered 503. */
  maxClients?: number;
  /** Bytes a page may leave unread before it is cut off (default 1 MiB). */
  maxBufferedBytes?: number;
}

export interface WebDemoStats {
  eventsIn: number;
  writesOut: number;
  eventsPerWrite: number;
  latencyP50: number;
  latencyP99: number;
  coalescing: boolean;
  /** Live pages connected, pages cut off for reading too slowly, and bytes they left unread. */
  clients: number;
  clientsCutOff: number;
  bufferedBytes: number;
}

const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
type Fields = WorkspaceSnapshotFields;

export async function startWebDemo(options: WebDemoOptions) {
  const store = options.store ?? createMemorySnapshotStore<Fields>();
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
      clients: stream.size,
      clientsCutOff: stream.cutOff,
      bufferedBytes: stream.bufferedBytes,
    };
  };

  // --- Server-Sent Events ---------------------------------------------------------------
  const stream = new EventStream({
    maxClients: options.maxClients ?? 200,
    maxBufferedBytes: options.maxBufferedBytes ?? 1 << 20,
  });
  /**
   * Each page follows the store's change feed from where it is: a new page from the snapshot
   * it is sent, a page that reconnects from the last change it got (its `Last-Event-ID`).
   * One that is too far behind, or comes from before a restart, is sent the snapshot again.
   */
  const follow = (request: IncomingMessage, response: ServerResponse): void => {
    // A store may answer later (PostgreSQL, Redis): each page's sends go out in feed order.
    let sent: Promise<void> = Promise.resolve();
    const inOrder = (step: () => unknown): void => {
      sent = sent.then(step).then(
        () => {},
        () => {},
      );
    };
    const snapshot = async (id: string) =>
      stream.send(response, 'snapshot', await store.getAll(), id);
    const lastEventId = request.headers['last-event-id'];
    let closed = false;
    let unsubscribe = (): void => {
      closed = true;
    };
    inOrder(async () => {
      const since = typeof lastEventId === 'string' ? lastEventId : await store.position();
      if (typeof lastEventId !== 'string') await snapshot(since);
      if (closed) return;
      unsubscribe = store.subscribe(
        (change) =>
          inOrder(async () => {
            if (change.type === 'reset') await snapshot(change.id);
            else if (change.type === 'remove') {
              stream.send(
                response,
                'change',
                { type: 'remove', workspaceId: change.workspaceId },
                change.id,
              );
            } else {
              // A change carries what changed; the card shows the whole entry.
              const entry = await store.getByWorkspaceId(change.workspaceId);
              const { workspaceId, changed } = change;
              stream.send(
                response,
                'change',
                { type: 'upsert', workspaceId, entry, changed },
                change.id,
              );
            }
          }),
        { since },
      );
    });
    const stop = (): void => unsubscribe();
    response.on('close', stop);
    following.add(stop);
    response.on('close', () => following.delete(stop));
  };
  const following = new Set<() => void>();
  const statsTimer = setInterval(() => stream.broadcast('stats', stats()), 250);

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

  // --- Routes: every path and method has an answer ----------------------------------------
  type Route = (request: IncomingMessage, response: ServerResponse, query: URLSearchParams) => void;
  const routes: Record<string, Record<string, Route>> = {
    '/': {
      GET: (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      },
    },
    '/events': {
      GET: (request, response) => {
        if (!stream.accept(request, response)) return;
        follow(request, response);
        stream.send(response, 'stats', stats());
      },
    },
    '/stats': {
      GET: (_request, response) => {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(stats()));
      },
    },
    '/coalescing': {
      POST: (_request, response, query) => {
        coalescing = query.get('on') !== 'false';
        stream.broadcast('stats', stats());
        response.writeHead(204).end();
      },
    },
    '/burst': {
      POST: (_request, response, query) => {
        const workspaceId = query.get('workspace') ?? simulation.pick();
        const events = Math.min(100, Math.max(1, Number(query.get('events') ?? 5) || 1));
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
      },
    },
  };
  const server = createBoundedServer((request, response) => {
    const target = parseTarget(request.url);
    if (target === undefined) {
      response.writeHead(400).end();
      return;
    }
    const { pathname, query } = target;
    const methods = Object.hasOwn(routes, pathname) ? routes[pathname] : undefined;
    if (methods === undefined) {
      response.writeHead(404).end();
      return;
    }
    const route = Object.hasOwn(methods, request.method ?? '')
      ? methods[request.method ?? '']
      : undefined;
    if (route === undefined) {
      response.writeHead(405, { allow: Object.keys(methods).join(', ') }).end();
      return;
    }
    route(request, response, query);
  });
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    stats,
    store,
    /** Cuts every page's connection, as a network that drops them would; pages reconnect. */
    dropConnections: () => stream.dropAll(),
    /**
     * Stops in bounded time, whatever the clients do: the final updates go out to every
     * client still connected, then the streams end and, after `graceMs`, connections still
     * open are destroyed.
     */
    async close(graceMs = 2_000): Promise<void> {
      simulation.stop();
      clearInterval(statsTimer);
      for (const detach of detachStraight) detach();
      await collector.stop();
      for (const unsubscribe of following) unsubscribe();
      stream.broadcast('stats', stats());
      stream.endAll();
      await closeWithin(server, graceMs);
    },
  };
}
