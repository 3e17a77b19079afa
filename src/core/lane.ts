/**
 * What one workspace's write lane holds: the running store call, the removal and the patch
 * waiting behind it, its back-off and the `flush` callers waiting for it to rest.
 * How a lane moves from one call to the next is `WriteLanes`' business.
 */
import type { Guard } from './guard.js';
import type { ResolvedOptions } from './options.js';
import type { PendingPatch } from './pending-patch.js';
import type { StoreCalls } from './store-calls.js';
import type { Timer } from './timers.js';
import type { CoalescerStats } from './types.js';

/** A removal waiting for, or doing, its store call. */
export interface Removal {
  failures: number;
  promise: Promise<void>;
  resolve: () => void;
}

/**
 * The store calls of one workspace, one at a time. A lane exists only while a call is
 * running or waiting: a removal runs before the patch queued behind it.
 */
export interface Lane {
  readonly workspaceId: string;
  /** A store call of this workspace is running. */
  busy: boolean;
  /** What the running call writes, to report it if the store never answers. */
  current: PendingPatch | Removal | undefined;
  removal: Removal | undefined;
  /** Failed tries of the patch being written or retried. */
  failures: number;
  /** The due patch that waits for the running call or the back-off to end. */
  next: PendingPatch | undefined;
  backoff: Timer | undefined;
  /** Given up by a drain timeout: late answers of the store are ignored. */
  abandoned: boolean;
  /** `flush` callers, told when the lane rests (nothing running, nothing ready). */
  waiters: Array<() => void> | undefined;
}

export function newLane(workspaceId: string): Lane {
  return {
    workspaceId,
    busy: false,
    current: undefined,
    removal: undefined,
    failures: 0,
    next: undefined,
    backoff: undefined,
    abandoned: false,
    waiters: undefined,
  };
}

export function newRemoval(): Removal {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { failures: 0, promise, resolve };
}

/** Resolves when the lane next rests. */
export function whenRested(lane: Lane): Promise<void> {
  return new Promise((resolve) => {
    lane.waiters ??= [];
    lane.waiters.push(resolve);
  });
}

/** Tells the `flush` callers waiting for the lane that it rests. */
export function releaseWaiters(lane: Lane): void {
  const waiters = lane.waiters;
  if (waiters === undefined) return;
  lane.waiters = undefined;
  for (const resolve of waiters) resolve();
}

/** What the lane still owed when it was abandoned, each item once. */
export function undrainedItems(lane: Lane): Set<PendingPatch | Removal> {
  const items = new Set<PendingPatch | Removal>();
  // The running call is also the lane's removal or next patch when it is being retried.
  if (lane.busy && lane.current !== undefined) items.add(lane.current);
  if (lane.removal !== undefined) items.add(lane.removal);
  if (lane.next !== undefined) items.add(lane.next);
  return items;
}

/** The counters behind `stats()`, shared with the coalescer. */
export type Counts = Omit<CoalescerStats, 'pending' | 'waiting'>;

/** What the lanes need from the rest of the coalescer. */
export interface LaneDeps<F extends object> {
  store: StoreCalls<F>;
  options: ResolvedOptions<F>;
  guard: Guard<F>;
  counts: Counts;
  /** Takes the workspace's pending patch, newer than a failed one, to merge it under. */
  takePending: (workspaceId: string) => PendingPatch | undefined;
}
