/**
 * A NestJS module: its provider configures the collector when the module initialises and
 * stops it — detached, flushed and drained — as the application begins to shut down
 * (`beforeApplicationShutdown`: before Nest closes its HTTP server and WebSocket gateways, so
 * connected clients still get the final push), and before `app.close()` resolves. Call
 * `app.enableShutdownHooks()` so that SIGTERM closes the app.
 *
 *   const app = await NestFactory.create(AppModule); // AppModule imports eventCollectorModule(deps)
 *   app.enableShutdownHooks();
 */
import 'reflect-metadata';
import { type BeforeApplicationShutdown, Module, type OnModuleInit } from '@nestjs/common';
import {
  type CollectorDeps,
  configureEventCollector,
  type Fields,
  stopEventCollector,
} from 'event-coalescer';

/** The provider whose lifecycle hooks start and stop the collector. */
export class EventCollectorLifecycle<F extends object = Fields>
  implements OnModuleInit, BeforeApplicationShutdown
{
  readonly #deps: CollectorDeps<F>;

  constructor(deps: CollectorDeps<F>) {
    this.#deps = deps;
  }

  onModuleInit(): void {
    configureEventCollector(this.#deps);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await stopEventCollector();
  }
}

/** A module for `imports`, built with the collector's dependencies (store, sources, options). */
export function eventCollectorModule<F extends object = Fields>(deps: CollectorDeps<F>) {
  class EventCollectorModule {}
  // Decorators applied as functions: no decorator compiler settings needed.
  Module({
    providers: [
      { provide: EventCollectorLifecycle, useFactory: () => new EventCollectorLifecycle(deps) },
    ],
  })(EventCollectorModule);
  return EventCollectorModule;
}
