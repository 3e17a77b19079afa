export { EventCoalescer } from './event-coalescer.js';
export {
  createMemorySnapshotStore,
  type MemorySnapshotStore,
  type SnapshotChange,
  type SnapshotEntry,
  type SnapshotListener,
} from './memory-store.js';
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
  SnapshotStore,
} from './types.js';
