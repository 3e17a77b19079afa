import type { EmitterLike } from './emitter-adapter.js';
import type { PatchSource } from './sources.js';

export const WORKSPACE_STATE_CHANGED = 'workspace_state_changed';
export const PR_SNAPSHOT_UPDATED = 'pr_snapshot_updated';
export const RATCHET_STATE_CHANGED = 'ratchet_state_changed';
export const RUN_SCRIPT_STATUS_CHANGED = 'run_script_status_changed';
export const WORKSPACE_ACTIVE = 'workspace_active';
export const WORKSPACE_IDLE = 'workspace_idle';

/** The snapshot fields the six workspace sources write. */
export interface WorkspaceSnapshotFields {
  /** Lets a patch create a workspace the store does not know yet. */
  projectId: string;
  status: string;
  prNumber: number | null;
  prState: string | null;
  prCiStatus: string | null;
  ratchetState: string;
  runScriptStatus: string;
  isWorking: boolean;
}

export interface WorkspaceStateChangedEvent {
  workspaceId: string;
  fromStatus: string;
  toStatus: string;
}

export interface PrSnapshotUpdatedEvent {
  workspaceId: string;
  prNumber: number | null;
  prState: string | null;
  prCiStatus: string | null;
  /** Not a snapshot field: never written. */
  prReviewState?: string | null;
}

export interface RatchetStateChangedEvent {
  workspaceId: string;
  fromState: string;
  toState: string;
}

export interface RunScriptStatusChangedEvent {
  workspaceId: string;
  fromStatus: string;
  toStatus: string;
}

/** `workspace_active` and `workspace_idle` carry `{ workspaceId }` (a bare id is accepted too). */
export interface WorkspaceActivityEvent {
  workspaceId: string;
}

/** The five domain emitters of a workspace host. */
export interface WorkspaceDomains {
  workspaceStateMachine: EmitterLike;
  prSnapshotService: EmitterLike;
  ratchetService: EmitterLike;
  runScriptStateMachine: EmitterLike;
  workspaceActivityService: EmitterLike;
}

/** Event names that differ from the defaults. */
export interface WorkspaceEventNames {
  workspaceStateChanged?: string;
  prSnapshotUpdated?: string;
  ratchetStateChanged?: string;
  runScriptStatusChanged?: string;
  workspaceActive?: string;
  workspaceIdle?: string;
}

type WorkspaceSource = PatchSource<WorkspaceSnapshotFields>;

// Payloads come from other code at run time: a missing one yields an action without a
// workspaceId, which the collector counts as invalid instead of throwing into emit().
const idOf = (event: WorkspaceActivityEvent | string): string =>
  typeof event === 'string' ? event : event?.workspaceId;

/**
 * The six subscriptions of a workspace host, ready made: state changes (ARCHIVED removes
 * at once), PR snapshots (never `prReviewState`), ratchet and run-script states, activity.
 * Source labels are `event:<event name>`.
 *
 * @example
 * configureEventCollector({
 *   store,
 *   sources: workspaceSnapshotSources({ workspaceStateMachine, prSnapshotService,
 *     ratchetService, runScriptStateMachine, workspaceActivityService }),
 * });
 */
export function workspaceSnapshotSources(
  domains: WorkspaceDomains,
  eventNames: WorkspaceEventNames = {},
): WorkspaceSource[] {
  const stateChanged = eventNames.workspaceStateChanged ?? WORKSPACE_STATE_CHANGED;
  const prUpdated = eventNames.prSnapshotUpdated ?? PR_SNAPSHOT_UPDATED;
  const ratchetChanged = eventNames.ratchetStateChanged ?? RATCHET_STATE_CHANGED;
  const runScriptChanged = eventNames.runScriptStatusChanged ?? RUN_SCRIPT_STATUS_CHANGED;
  const active = eventNames.workspaceActive ?? WORKSPACE_ACTIVE;
  const idle = eventNames.workspaceIdle ?? WORKSPACE_IDLE;
  return [
    {
      emitter: domains.workspaceStateMachine,
      event: stateChanged,
      map: (event: WorkspaceStateChangedEvent) =>
        event?.toStatus === 'ARCHIVED'
          ? { workspaceId: event.workspaceId, remove: true }
          : { workspaceId: event?.workspaceId, fields: { status: event?.toStatus } },
    },
    {
      emitter: domains.prSnapshotService,
      event: prUpdated,
      map: (event: PrSnapshotUpdatedEvent) => ({
        workspaceId: event?.workspaceId,
        fields: {
          prNumber: event?.prNumber,
          prState: event?.prState,
          prCiStatus: event?.prCiStatus,
        },
      }),
    },
    {
      emitter: domains.ratchetService,
      event: ratchetChanged,
      map: (event: RatchetStateChangedEvent) => ({
        workspaceId: event?.workspaceId,
        fields: { ratchetState: event?.toState },
      }),
    },
    {
      emitter: domains.runScriptStateMachine,
      event: runScriptChanged,
      map: (event: RunScriptStatusChangedEvent) => ({
        workspaceId: event?.workspaceId,
        fields: { runScriptStatus: event?.toStatus },
      }),
    },
    {
      emitter: domains.workspaceActivityService,
      event: active,
      map: (event: WorkspaceActivityEvent | string) => ({
        workspaceId: idOf(event),
        fields: { isWorking: true },
      }),
    },
    {
      emitter: domains.workspaceActivityService,
      event: idle,
      map: (event: WorkspaceActivityEvent | string) => ({
        workspaceId: idOf(event),
        fields: { isWorking: false },
      }),
    },
  ];
}
