/**
 * Prometheus metrics for a coalescer, with prom-client: counters and gauges read from
 * `stats()` at each scrape, a store-call duration histogram fed by the `event-coalescer:store`
 * tracing channel, and the events per write.
 *
 *   const registry = new Registry();
 *   const stop = instrumentCoalescer(collector.coalescer, registry);
 *   // GET /metrics → await registry.metrics()
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { type EventCoalescer, STORE_CHANNEL, type StoreCallContext } from 'event-coalescer';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const COUNTERS = [
  'enqueued',
  'flushed',
  'skipped',
  'removed',
  'retried',
  'failed',
  'invalid',
  'dropped',
] as const;
const GAUGES = ['pending', 'waiting', 'inFlight'] as const;

/** Registers the coalescer's metrics; returns the function that stops the tracing feed. */
export function instrumentCoalescer(
  coalescer: EventCoalescer<object>,
  registry: Registry,
): () => void {
  const reported = new Map<string, number>();
  for (const name of COUNTERS) {
    new Counter({
      name: `event_coalescer_${name}_total`,
      help: `stats().${name} of the coalescer`,
      registers: [registry],
      collect() {
        // A counter only grows: add what stats() counted since the last scrape.
        const now = coalescer.stats()[name];
        this.inc(now - (reported.get(name) ?? 0));
        reported.set(name, now);
      },
    });
  }
  for (const name of GAUGES) {
    new Gauge({
      name: `event_coalescer_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`,
      help: `stats().${name} of the coalescer`,
      registers: [registry],
      collect() {
        this.set(coalescer.stats()[name]);
      },
    });
  }
  new Gauge({
    name: 'event_coalescer_events_per_write',
    help: 'Events enqueued per store write: what coalescing saves',
    registers: [registry],
    collect() {
      const { enqueued, flushed } = coalescer.stats();
      this.set(flushed === 0 ? 0 : enqueued / flushed);
    },
  });

  const duration = new Histogram({
    name: 'event_coalescer_store_call_duration_seconds',
    help: 'Duration of each store call, by operation and outcome',
    labelNames: ['operation', 'outcome'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const startedAt = new WeakMap<object, number>();
  const finish = (context: StoreCallContext): void => {
    const started = startedAt.get(context);
    if (started === undefined) return;
    startedAt.delete(context);
    const outcome = 'error' in context ? 'error' : 'ok';
    duration.observe(
      { operation: context.operation, outcome },
      (performance.now() - started) / 1000,
    );
  };
  const handlers = {
    start: (message: unknown) => startedAt.set(message as object, performance.now()),
    // A synchronous call ends at `end`; an asynchronous one at `asyncEnd`.
    end: (message: unknown) => {
      const context = message as StoreCallContext;
      if ('result' in context || 'error' in context) finish(context);
    },
    asyncStart: () => {},
    asyncEnd: (message: unknown) => finish(message as StoreCallContext),
    error: () => {},
  };
  const channel = diagnosticsChannel.tracingChannel(STORE_CHANNEL);
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}
