export { configureEventCollector, stopEventCollector } from './active-collector.js';
export type {
  AddRemoveEmitter,
  EmitterLike,
  EventTargetLike,
  OnOffEmitter,
} from './emitter-adapter.js';
export { EventCoalescer } from './event-coalescer.js';
export {
  type CollectorDeps,
  createEventCollector,
  type EventCollector,
} from './event-collector.js';
export {
  createMemorySnapshotStore,
  type MemorySnapshotStore,
  type SnapshotChange,
  type SnapshotEntry,
  type SnapshotListener,
} from './memory-store.js';
export type {
  MapResult,
  PatchAction,
  PatchSource,
  RefreshSource,
  RemoveAction,
  Source,
  SourceAction,
} from './sources.js';
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
export {
  PR_SNAPSHOT_UPDATED,
  type PrSnapshotUpdatedEvent,
  RATCHET_STATE_CHANGED,
  type RatchetStateChangedEvent,
  RUN_SCRIPT_STATUS_CHANGED,
  type RunScriptStatusChangedEvent,
  WORKSPACE_ACTIVE,
  WORKSPACE_IDLE,
  WORKSPACE_STATE_CHANGED,
  type WorkspaceActivityEvent,
  type WorkspaceDomains,
  type WorkspaceEventNames,
  type WorkspaceSnapshotFields,
  type WorkspaceStateChangedEvent,
  workspaceSnapshotSources,
} from './workspace-sources.js';
