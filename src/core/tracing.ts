/**
 * What the coalescer tells APMs and metrics, on `node:diagnostics_channel` (the built-in that
 * OpenTelemetry instrumentations and undici use): a tracing channel around each store call,
 * and plain channels for what is given up and what is dropped. Nothing is built or published
 * while nobody subscribes, and `enqueue` publishes nothing at all.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { PendingPatch } from './pending-patch.js';
import type { Fields, Patch } from './types.js';

/** The tracing channel around each store call: `tracing:event-coalescer:store:start` and so on. */
export const STORE_CHANNEL = 'event-coalescer:store';
/** Published once for each thing given up (what `onError` receives). */
export const GIVE_UP_CHANNEL = 'event-coalescer:give-up';
/** Published for each patch refused after `close()`. */
export const DROP_CHANNEL = 'event-coalescer:drop';

/**
 * The context of a store call, as `start`, `end`, `asyncStart`, `asyncEnd` and `error` see it.
 * `result` or `error` are set once the call settled.
 */
export interface StoreCallContext<F extends object = Fields> {
  operation: 'upsert' | 'getByWorkspaceId' | 'remove';
  workspaceId: string;
  /** The merged patch's source label; `undefined` for a removal. */
  source: string | undefined;
  /** The merged patch; `undefined` for a removal. */
  fields: Patch<F> | undefined;
  /** 1 for the first try of this patch or removal, 2 for its first retry, … */
  attempt: number;
  result?: unknown;
  error?: unknown;
}

/** The message of {@link GIVE_UP_CHANNEL}: the error and the context `onError` receives. */
export interface GiveUpMessage {
  error: unknown;
  context: object;
}

/** The message of {@link DROP_CHANNEL}. */
export interface DropMessage {
  workspaceId: string;
  source: string;
}

export const storeChannel = diagnosticsChannel.tracingChannel<unknown, StoreCallContext>(
  STORE_CHANNEL,
);
export const giveUpChannel = diagnosticsChannel.channel(GIVE_UP_CHANNEL);

const { start, end, asyncStart, asyncEnd, error } = storeChannel;
/**
 * Whether anyone listens to the store calls. Node's tracing channel says so itself; Bun's has
 * no `hasSubscribers`, so its five channels are asked.
 */
export const storeCallsTraced: () => boolean =
  typeof storeChannel.hasSubscribers === 'boolean'
    ? () => storeChannel.hasSubscribers
    : () =>
        start.hasSubscribers ||
        end.hasSubscribers ||
        asyncStart.hasSubscribers ||
        asyncEnd.hasSubscribers ||
        error.hasSubscribers;
export const dropChannel = diagnosticsChannel.channel(DROP_CHANNEL);

/** The context of a traced store call: `attempt` counts from 1. */
export function traceContext(
  operation: StoreCallContext['operation'],
  workspaceId: string,
  patch: PendingPatch | undefined,
  attempt: number,
): StoreCallContext {
  return { operation, workspaceId, source: patch?.sourceLabel(), fields: patch?.fields, attempt };
}

/** What a traced call answered: `end` (sync) or `asyncStart` and `asyncEnd`. */
export function traceDone(trace: StoreCallContext, result: unknown, async: boolean): void {
  trace.result = result;
  if (!async) {
    storeChannel.end.publish(trace);
    return;
  }
  storeChannel.asyncStart.publish(trace);
  storeChannel.asyncEnd.publish(trace);
}

export function traceFailed(trace: StoreCallContext, error: unknown, async: boolean): void {
  trace.error = error;
  storeChannel.error.publish(trace);
  if (!async) {
    storeChannel.end.publish(trace);
    return;
  }
  storeChannel.asyncStart.publish(trace);
  storeChannel.asyncEnd.publish(trace);
}
