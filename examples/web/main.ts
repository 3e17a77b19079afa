/**
 * `npm start -- --web`: the live page, until Ctrl-C or --duration. Its URL is the only line
 * on stdout, for scripts (`npm start --silent -- --web`, so that npm prints no banner there);
 * everything else goes to stderr.
 */
import {
  durationS,
  host,
  port,
  postgresUrl,
  rate,
  windowMs,
  workspaceCount,
} from '../demo-options.js';
import { openPostgresStore } from '../postgres-demo-store.js';
import { startWebDemo } from './server.js';

const postgres = postgresUrl === undefined ? undefined : await openPostgresStore(postgresUrl);
const demo = await startWebDemo({
  port,
  host,
  workspaces: workspaceCount,
  rate,
  windowMs,
  ...(postgres === undefined ? {} : { store: postgres.store }),
});
process.stdout.write(`${demo.url}\n`);
console.error(`serving the live snapshot of ${workspaceCount} workspaces; Ctrl-C stops`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await demo.close();
  await postgres?.close();
  const { eventsIn, writesOut, eventsPerWrite } = demo.stats();
  console.error(
    `events in: ${eventsIn}, writes out: ${writesOut}, ${eventsPerWrite.toFixed(2)} events per write`,
  );
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
if (durationS > 0) setTimeout(() => void shutdown(), durationS * 1000);
