/**
 * The real wiring in a host: configure the collector once the server listens, and on
 * SIGTERM stop it (flushing what is pending) before closing the server.
 *
 *   npx tsx examples/host-server.ts   then   curl localhost:3000/snapshot
 */
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import {
  configureEventCollector,
  stopEventCollector,
  WORKSPACE_STATE_CHANGED,
  type WorkspaceSnapshotFields,
  workspaceSnapshotSources,
} from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';

// The host's domains: they emit and never import the snapshot.
const domains = {
  workspaceStateMachine: new EventEmitter(),
  prSnapshotService: new EventEmitter(),
  ratchetService: new EventEmitter(),
  runScriptStateMachine: new EventEmitter(),
  workspaceActivityService: new EventEmitter(),
};
const store = createMemorySnapshotStore<WorkspaceSnapshotFields>();
store.upsert('ws-1', { projectId: 'p-1', status: 'NEW' }, 'reconcile');

const server = createServer((request, response) => {
  if (request.url === '/snapshot') {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify(store.getAll()));
    return;
  }
  // Any other request is a state change in a domain.
  domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
    workspaceId: 'ws-1',
    fromStatus: 'NEW',
    toStatus: 'READY',
  });
  response.end('ok\n');
});

const port = Number(process.env.PORT ?? 3000);
server.listen(port, () => {
  // Startup hook: subscribe once the server is up.
  configureEventCollector({ store, sources: workspaceSnapshotSources(domains), logger: console });
  console.log(`listening on http://localhost:${port}`);
});

process.once('SIGTERM', async () => {
  // Shutdown hook: flush pending snapshot writes before the server goes away.
  await stopEventCollector();
  server.close(() => process.exit(0));
});
