/** `npm start -- --web`: the live page, until Ctrl-C or --duration. Prints its URL first. */
import { durationS, host, port, rate, windowMs, workspaceCount } from '../demo-options.js';
import { startWebDemo } from './server.js';

const demo = await startWebDemo({ port, host, workspaces: workspaceCount, rate, windowMs });
console.log(demo.url);
console.log(`serving the live snapshot of ${workspaceCount} workspaces; Ctrl-C stops`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const { eventsIn, writesOut, eventsPerWrite } = demo.stats();
  await demo.close();
  console.log(
    `events in: ${eventsIn}, writes out: ${writesOut}, ${eventsPerWrite.toFixed(2)} events per write`,
  );
}
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
if (durationS > 0) setTimeout(() => void shutdown(), durationS * 1000);
