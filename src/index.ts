export { EventCoalescer } from './core/coalescer.js';
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
  RetryOptions,
  SnapshotChange,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreErrorContext,
  StoreErrorHandler,
} from './core/types.js';
