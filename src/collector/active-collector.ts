/**
 * The module hooks: one active collector per process, configured from a host's startup hook
 * and stopped from its shutdown hook. The state lives on `globalThis` under a registered
 * symbol, so the ESM and CommonJS copies of the package in one process share it (as they
 * share the timestamp clock). A host that needs two collectors owns them instead, with
 * `createEventCollector`.
 */
import type { Fields } from '../core/types.js';
import { type CollectorDeps, type EventCollector, openCollector } from './event-collector.js';

interface HookState {
  /** The collector a host configured in its startup hook. */
  active: EventCollector<object> | undefined;
  /** Stops still settling: of collectors replaced or stopped. */
  stopping: Set<Promise<void>>;
}

const SHARED = Symbol.for('event-coalescer.active-collector');
const holder = globalThis as { [SHARED]?: HookState };
const state: HookState = holder[SHARED] ?? { active: undefined, stopping: new Set() };
holder[SHARED] = state;

/**
 * Stops the active collector, and any that a store call configured meanwhile (its final
 * flush runs store calls, and a store may call the hooks): none is left unstopped.
 */
function retireActive(): void {
  while (state.active !== undefined) {
    const collector = state.active;
    state.active = undefined;
    const stopping = collector.stop();
    state.stopping.add(stopping);
    void stopping.finally(() => state.stopping.delete(stopping));
  }
}

/**
 * Creates the process's active collector, for a host's startup hook. Configuring again
 * checks the new `deps` first (a bad one throws and leaves the active collector running),
 * then stops the active one: its listeners are detached before the new ones attach.
 *
 * @example
 * server.listen(port, () => {
 *   configureEventCollector({ store, sources: workspaceSnapshotSources(domains) });
 * });
 */
export function configureEventCollector<F extends object = Fields>(
  deps: CollectorDeps<F>,
): EventCollector<F> {
  const collector = openCollector(deps, retireActive);
  // A store call during the stop above may have configured one: that one is stopped too.
  retireActive();
  state.active = collector as unknown as EventCollector<object>;
  return collector;
}

/** The active collector of the module hooks, or `undefined` (for `/stats` and `/flush` handlers). */
export function activeEventCollector<F extends object = Fields>(): EventCollector<F> | undefined {
  return state.active as EventCollector<F> | undefined;
}

/**
 * Stops the active collector, for a host's shutdown hook: detaches its listeners, flushes
 * what is pending and resolves once the writes have settled — its own and those of every
 * collector it replaced, also when called again while they settle. A no-op when there is none.
 *
 * @example
 * process.on('SIGTERM', async () => {
 *   await stopEventCollector();
 *   server.close();
 * });
 */
export async function stopEventCollector(): Promise<void> {
  retireActive();
  await Promise.all(state.stopping);
}
