/**
 * A Fastify plugin: the collector starts when the server is ready and stops — detached,
 * flushed and drained — as it begins to close, in `preClose`: before Fastify waits for its
 * connections, so a host with WebSocket clients still open flushes too, and its clients get
 * the final push before their sockets close (close them in a `preClose` hook added after this
 * plugin). `onClose` would run only once every connection has ended.
 *
 *   await app.register(eventCollectorPlugin, { deps: { store, sources } });
 */
import {
  type CollectorDeps,
  configureEventCollector,
  type Fields,
  stopEventCollector,
} from 'event-coalescer';
import type { FastifyInstance } from 'fastify';

export async function eventCollectorPlugin<F extends object = Fields>(
  app: FastifyInstance,
  options: { deps: CollectorDeps<F> },
): Promise<void> {
  app.addHook('onReady', async () => {
    configureEventCollector(options.deps);
  });
  app.addHook('preClose', async () => {
    await stopEventCollector();
  });
}
// Hooks registered by the plugin apply to the whole server, not only to its own context.
(eventCollectorPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
