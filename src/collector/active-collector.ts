import type { Fields } from '../core/types.js';
import {
  type CollectorDeps,
  createEventCollector,
  type EventCollector,
} from './event-collector.js';

/** The collector a host configured in its startup hook. */
let active: EventCollector<object> | undefined;
/** Stops still settling, from collectors that a later configure replaced. */
const replaced = new Set<Promise<void>>();

/**
 * Creates the module's active collector, for a host's startup hook. Configuring again
 * stops the active one first: its listeners are detached before the new ones attach.
 *
 * @example
 * server.listen(port, () => {
 *   configureEventCollector({ store, sources: workspaceSnapshotSources(domains) });
 * });
 */
export function configureEventCollector<F extends object = Fields>(
  deps: CollectorDeps<F>,
): EventCollector<F> {
  if (active !== undefined) {
    const stopping = active.stop();
    replaced.add(stopping);
    void stopping.finally(() => replaced.delete(stopping));
    active = undefined;
  }
  const collector = createEventCollector(deps);
  active = collector as unknown as EventCollector<object>;
  return collector;
}

/**
 * Stops the active collector, for a host's shutdown hook: detaches its listeners, flushes
 * what is pending and resolves once the writes have settled. A no-op when there is none.
 *
 * @example
 * process.on('SIGTERM', async () => {
 *   await stopEventCollector();
 *   server.close();
 * });
 */
export async function stopEventCollector(): Promise<void> {
  const collector = active;
  active = undefined;
  await Promise.all([collector?.stop(), ...replaced]);
}
