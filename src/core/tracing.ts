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
/** Published when the store goes away and when it is back (see {@link StoreHealthMessage}). */
export const STORE_HEALTH_CHANNEL = 'event-coalescer:store-health';

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

/** The message of {@link STORE_HEALTH_CHANNEL}. */
export type StoreHealthMessage =
  /** Calls kept failing: writes wait, and the store is probed at the retry rule's pace. */
  | { available: false; error: unknown; backlog: number }
  /** A call landed again after `awayMs`: the backlog drains. */
  | { available: true; awayMs: number; backlog: number };

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

export const healthChannel = diagnosticsChannel.channel(STORE_HEALTH_CHANNEL);

/** One traced store call: its context and the events it publishes, in tracing-channel order. */
export interface StoreCallTrace {
  /** Runs the call inside `start` (and `end` when it throws or answers at once). */
  run<T>(call: () => T): T;
  /** The answer is a promise: `end` now, `asyncStart`/`asyncEnd` when it settles. */
  pending(): void;
  answered(result: unknown, async: boolean): void;
  failed(error: unknown, async: boolean): void;
}

/** A trace of one store call; `attempt` counts from 1. Built only while an APM listens. */
export function traceStart(
  operation: StoreCallContext['operation'],
  workspaceId: string,
  patch: PendingPatch<object> | undefined,
  attempt: number,
): StoreCallTrace {
  const context: StoreCallContext = {
    operation,
    workspaceId,
    source: patch?.sourceLabel(),
    fields: patch?.patch,
    attempt,
  };
  const settled = (async: boolean): void => {
    if (!async) {
      end.publish(context);
      return;
    }
    asyncStart.publish(context);
    asyncEnd.publish(context);
  };
  return {
    run: (call) => start.runStores(context, call),
    pending: () => end.publish(context),
    answered(result, async) {
      context.result = result;
      settled(async);
    },
    failed(failure, async) {
      context.error = failure;
      error.publish(context);
      settled(async);
    },
  };
}
