// The package root: the whole in-process API. `event-coalescer/redis` stays a subpath, so
// that its optional peer (ioredis) is never needed by those who do not use it.
export * from './collector/index.js';
export { shareTimestampClock } from './core/clock.js';
export { EventCoalescer } from './core/coalescer.js';
export { type ErrorCode, EventCoalescerError } from './core/errors.js';
export type { SettledOutcome } from './core/receipts.js';
export { defaultRetryable } from './core/retry-rule.js';
export {
  DROP_CHANNEL,
  type DropMessage,
  GIVE_UP_CHANNEL,
  type GiveUpMessage,
  STORE_CHANNEL,
  STORE_HEALTH_CHANNEL,
  type StoreCallContext,
  type StoreHealthMessage,
} from './core/tracing.js';
export type {
  CoalescerOptions,
  CoalescerStats,
  EnqueueOptions,
  ErrorContext,
  ErrorHandler,
  Fields,
  Logger,
  MaybePromise,
  Patch,
  RetryContext,
  RetryOptions,
  SnapshotChange,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreCallOptions,
  StoreErrorContext,
  StoreErrorHandler,
  SubscribeOptions,
  UpsertItem,
  UpsertOutcome,
} from './core/types.js';
export {
  createMemorySnapshotStore,
  type MemorySnapshotStore,
  type MemoryStoreOptions,
} from './stores/memory.js';
