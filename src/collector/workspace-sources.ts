import type { Patch } from '../core/types.js';
import { checkPresetArguments } from './check-preset.js';
import type { EmitterLike } from './emitter-adapter.js';
import { type PatchSource, sourceWindows } from './sources.js';

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

/** The six events of the preset, by the keys of {@link WorkspaceEventNames}. */
export type WorkspaceEvent = keyof WorkspaceEventNames;

type DefaultFields = Patch<WorkspaceSnapshotFields>;

/**
 * Per event, the fields it writes instead of the preset's: `defaults` are the preset's, to
 * extend (`{ ...defaults, prUrl: event.prUrl }`) or replace. Declared as methods, so a host
 * may type `event` with the extra members its events carry.
 */
export interface WorkspaceFieldMaps<F extends object> {
  workspaceStateChanged?(event: WorkspaceStateChangedEvent, defaults: DefaultFields): Patch<F>;
  prSnapshotUpdated?(event: PrSnapshotUpdatedEvent, defaults: DefaultFields): Patch<F>;
  ratchetStateChanged?(event: RatchetStateChangedEvent, defaults: DefaultFields): Patch<F>;
  runScriptStatusChanged?(event: RunScriptStatusChangedEvent, defaults: DefaultFields): Patch<F>;
  workspaceActive?(event: WorkspaceActivityEvent | string, defaults: DefaultFields): Patch<F>;
  workspaceIdle?(event: WorkspaceActivityEvent | string, defaults: DefaultFields): Patch<F>;
}

/** Options of {@link workspaceSnapshotSources}: event names, and what a host changes. */
export interface WorkspaceSourcesOptions<F extends object = WorkspaceSnapshotFields>
  extends WorkspaceEventNames {
  /** Events written at once instead of after the window (a host writes status changes so). */
  immediate?: readonly WorkspaceEvent[];
  /** Fields an event writes, extending or replacing the preset's. */
  fields?: WorkspaceFieldMaps<F>;
  /**
   * Windows of an event's own, instead of the coalescer's: `{ workspaceActive: 1000 }` lets
   * activity pings wait a second while the rest is written within the coalescer's window.
   */
  windowMs?: Partial<Record<WorkspaceEvent, number>>;
  /** Bounds of an event's own, instead of the coalescer's `maxWaitMs`. */
  maxWaitMs?: Partial<Record<WorkspaceEvent, number>>;
}

// Payloads come from other code at run time: a missing one yields an action without a
// workspaceId, which the collector counts as invalid instead of throwing into emit().
const idOf = (event: WorkspaceActivityEvent | string): string =>
  typeof event === 'string' ? event : event?.workspaceId;

/**
 * The six subscriptions of a workspace host, ready made: state changes (ARCHIVED removes
 * at once), PR snapshots (never `prReviewState`), ratchet and run-script states, activity.
 * Source labels are `event:<event name>`. `options` renames events, marks some immediate, gives
 * some windows of their own, and extends or replaces the fields an event writes; without them,
 * the six default mappings. Arguments are checked whole: a missing or misspelled domain or
 * option is a TypeError that names it.
 *
 * @example
 * configureEventCollector({
 *   store,
 *   sources: workspaceSnapshotSources(
 *     { workspaceStateMachine, prSnapshotService, ratchetService, runScriptStateMachine,
 *       workspaceActivityService },
 *     {
 *       immediate: ['workspaceStateChanged'],
 *       fields: { prSnapshotUpdated: (event: PrSnapshotUpdatedEvent & { prUrl: string }, defaults) =>
 *         ({ ...defaults, prUrl: event.prUrl }) },
 *     },
 *   ),
 * });
 */
export function workspaceSnapshotSources<F extends object = WorkspaceSnapshotFields>(
  domains: WorkspaceDomains,
  options: WorkspaceSourcesOptions<F> = {},
): PatchSource<F>[] {
  checkPresetArguments(domains, options);
  const immediate = new Set<WorkspaceEvent>(options.immediate ?? []);
  const maps: WorkspaceFieldMaps<F> = options.fields ?? {};
  /** The action of one event: its workspace, the fields the host maps it to, immediacy. */
  const action = <E>(
    which: WorkspaceEvent,
    event: E,
    workspaceId: string | undefined,
    defaults: DefaultFields,
  ) => {
    const map = maps[which] as ((event: E, defaults: DefaultFields) => Patch<F>) | undefined;
    const fields = map === undefined ? (defaults as Patch<F>) : map.call(maps, event, defaults);
    return immediate.has(which)
      ? { workspaceId: workspaceId as string, fields, immediate: true }
      : { workspaceId: workspaceId as string, fields };
  };
  const name = (which: WorkspaceEvent, fallback: string): string => options[which] ?? fallback;
  /** The event's own windows, as its source carries them. */
  const windows = (which: WorkspaceEvent) =>
    sourceWindows({ windowMs: options.windowMs?.[which], maxWaitMs: options.maxWaitMs?.[which] });
  const sources: PatchSource<F>[] = [
    {
      emitter: domains.workspaceStateMachine,
      event: name('workspaceStateChanged', WORKSPACE_STATE_CHANGED),
      ...windows('workspaceStateChanged'),
      map: (event: WorkspaceStateChangedEvent) =>
        event?.toStatus === 'ARCHIVED'
          ? { workspaceId: event.workspaceId, remove: true }
          : action('workspaceStateChanged', event, event?.workspaceId, {
              status: event?.toStatus,
            }),
    },
    {
      emitter: domains.prSnapshotService,
      event: name('prSnapshotUpdated', PR_SNAPSHOT_UPDATED),
      ...windows('prSnapshotUpdated'),
      map: (event: PrSnapshotUpdatedEvent) =>
        action('prSnapshotUpdated', event, event?.workspaceId, {
          prNumber: event?.prNumber,
          prState: event?.prState,
          prCiStatus: event?.prCiStatus,
        }),
    },
    {
      emitter: domains.ratchetService,
      event: name('ratchetStateChanged', RATCHET_STATE_CHANGED),
      ...windows('ratchetStateChanged'),
      map: (event: RatchetStateChangedEvent) =>
        action('ratchetStateChanged', event, event?.workspaceId, { ratchetState: event?.toState }),
    },
    {
      emitter: domains.runScriptStateMachine,
      event: name('runScriptStatusChanged', RUN_SCRIPT_STATUS_CHANGED),
      ...windows('runScriptStatusChanged'),
      map: (event: RunScriptStatusChangedEvent) =>
        action('runScriptStatusChanged', event, event?.workspaceId, {
          runScriptStatus: event?.toStatus,
        }),
    },
    {
      emitter: domains.workspaceActivityService,
      event: name('workspaceActive', WORKSPACE_ACTIVE),
      ...windows('workspaceActive'),
      map: (event: WorkspaceActivityEvent | string) =>
        action('workspaceActive', event, idOf(event), { isWorking: true }),
    },
    {
      emitter: domains.workspaceActivityService,
      event: name('workspaceIdle', WORKSPACE_IDLE),
      ...windows('workspaceIdle'),
      map: (event: WorkspaceActivityEvent | string) =>
        action('workspaceIdle', event, idOf(event), { isWorking: false }),
    },
  ];
  return sources;
}
