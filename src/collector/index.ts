export {
  activeEventCollector,
  configureEventCollector,
  stopEventCollector,
} from './active-collector.js';
export type {
  AddRemoveEmitter,
  EmitterLike,
  EventTargetLike,
  OnOffEmitter,
} from './emitter-adapter.js';
export {
  type CollectorDeps,
  createEventCollector,
  type EventCollector,
} from './event-collector.js';
export type {
  MapResult,
  PatchAction,
  PatchSource,
  RefreshSource,
  RemoveAction,
  Source,
  SourceAction,
  SourceWindows,
} from './sources.js';
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
  type WorkspaceEvent,
  type WorkspaceEventNames,
  type WorkspaceFieldMaps,
  type WorkspaceSnapshotFields,
  type WorkspaceSourcesOptions,
  type WorkspaceStateChangedEvent,
  workspaceSnapshotSources,
} from './workspace-sources.js';
