export { EventCoalescer } from './event-coalescer.js';
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
} from './types.js';
