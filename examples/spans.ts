/**
 * An OpenTelemetry-style span per store call, from the `event-coalescer:store` tracing
 * channel: the shape an APM instrumentation builds. Hand-written here, so the package needs
 * no tracing SDK; an instrumentation would hand the same fields to its tracer.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { STORE_CHANNEL, type StoreCallContext } from 'event-coalescer';

export interface Span {
  name: string;
  attributes: { 'workspace.id': string; 'coalescer.source'?: string; 'coalescer.attempt': number };
  startTime: number;
  endTime: number;
  status: { code: 'OK' } | { code: 'ERROR'; message: string };
}

/** Calls `exportSpan` with one span per store call; returns the function that stops it. */
export function traceStoreCalls(exportSpan: (span: Span) => void): () => void {
  const open = new WeakMap<object, Span>();
  const close = (context: StoreCallContext): void => {
    const span = open.get(context);
    if (span === undefined) return;
    open.delete(context);
    span.endTime = performance.now();
    if ('error' in context) span.status = { code: 'ERROR', message: String(context.error) };
    exportSpan(span);
  };
  const handlers = {
    start(message: unknown) {
      const context = message as StoreCallContext;
      open.set(context, {
        name: `event-coalescer ${context.operation}`,
        attributes: {
          'workspace.id': context.workspaceId,
          ...(context.source === undefined ? {} : { 'coalescer.source': context.source }),
          'coalescer.attempt': context.attempt,
        },
        startTime: performance.now(),
        endTime: 0,
        status: { code: 'OK' },
      });
    },
    end(message: unknown) {
      const context = message as StoreCallContext;
      if ('result' in context || 'error' in context) close(context);
    },
    asyncStart() {},
    asyncEnd: (message: unknown) => close(message as StoreCallContext),
    error() {},
  };
  const channel = diagnosticsChannel.tracingChannel(STORE_CHANNEL);
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}
