/**
 * The write lanes of every workspace and the turns between them: at most
 * `maxConcurrentWrites` store calls in flight (one per workspace, always), due writes waiting
 * their turn oldest first, the backlog of writes that failed or wait for the store's return,
 * and the store's health, which turns a store that is away into one probe at a time.
 * How one workspace's write moves is its lane's business (see `WriteLane`).
 */
import { EventCoalescerError } from './errors.js';
import { LaneTable } from './lane-table.js';
import type { PendingPatch } from './pending-patch.js';
import { StoreHealth } from './store-health.js';
import { type LaneHost, type LaneSettings, type Verdict, WriteLane } from './write-lane.js';

/** A slot shared by the lanes of one batch: free once the last of them has released it. */
interface SharedSlot {
  /** The wave it was taken in (`WriteBatch.waves`). */
  readonly wave: number;
  lanes: number;
  running: number;
}

/** The lanes' settings: a lane's, and the bounds they share. */
export interface LanesSettings<F extends object> extends LaneSettings<F> {
  readonly maxConcurrentWrites: number;
  readonly maxBacklog: number;
}

export class WriteLanes<F extends object> implements LaneHost<F> {
  readonly settings: LaneSettings<F>;
  readonly #maxConcurrentWrites: number;
  readonly #maxBacklog: number;
  readonly #lanes = new LaneTable<WriteLane<F>>();
  /** Lanes waiting for a slot, oldest first; a lane that left the `ready` state is skipped. */
  #ready: WriteLane<F>[] = [];
  #readyHead = 0;
  /** Store calls running now, synchronous ones included: a batch is one. */
  #running = 0;
  /** The slot the lanes starting in this wave share, up to `batchSize` of them. */
  #shared: SharedSlot | undefined;
  /** The lanes running in a shared slot, and theirs. */
  readonly #sharing = new Map<WriteLane<F>, SharedSlot>();
  #draining = false;
  /** Lanes whose write failed and waits, or waits for the store: oldest first. */
  readonly #backlog = new Set<WriteLane<F>>();
  /** The part of the backlog held while the store is away, in the order it was held. */
  readonly #held = new Set<WriteLane<F>>();
  readonly #health: StoreHealth;
  /** The lane whose call probes a store that is away. */
  #probing: WriteLane<F> | undefined;
  #idleWaiters: Array<() => void> | undefined;

  constructor(settings: LanesSettings<F>) {
    this.settings = settings;
    this.#maxConcurrentWrites = settings.maxConcurrentWrites;
    this.#maxBacklog = settings.maxBacklog;
    this.#health = new StoreHealth(
      settings.rule,
      settings.guard.logger,
      () => this.#probe(),
      () => this.#backlog.size,
    );
  }

  /** Workspaces with a store call running or waiting. */
  get size(): number {
    return this.#lanes.size;
  }

  /** Whether the workspace has a store call running or waiting. */
  has(workspaceId: string): boolean {
    return this.#lanes.has(workspaceId);
  }

  /** Due patches waiting behind a call in flight, a back-off or the store (one per workspace). */
  get waitingCount(): number {
    let waiting = 0;
    for (const lane of this.#lanes.list()) if (lane.hasWaitingPatch) waiting++;
    return waiting;
  }

  get backlogCount(): number {
    return this.#backlog.size;
  }

  get storeAvailable(): boolean {
    return this.#health.available;
  }

  /** Writes a due patch, or queues it behind the workspace's running call. */
  write(patch: PendingPatch<F>): void {
    const lane = this.#laneOf(patch.workspaceId);
    lane.write(patch);
    this.#lanes.opened(lane);
  }

  /** Removes the workspace: at once, or right after its running call. */
  remove(workspaceId: string): Promise<void> {
    const lane = this.#laneOf(workspaceId);
    const removed = lane.remove();
    this.#lanes.opened(lane);
    return removed;
  }

  /** Ends the workspace's back-off, so what waits for it is tried now. */
  endBackoff(workspaceId: string): void {
    this.#lanes.get(workspaceId)?.retryNow();
  }

  /** Ends every back-off, and probes a store that is away now. */
  endAllBackoffs(): void {
    for (const lane of this.#lanes.list()) lane.retryNow();
    this.#health.probeNow();
  }

  /** The workspace's patches not yet landed, oldest first: in flight, then waiting. */
  outstanding(workspaceId: string): PendingPatch<F>[] {
    return this.#lanes.get(workspaceId)?.outstanding() ?? [];
  }

  /** Resolves when the workspace's lane rests; `undefined` when no call of it runs or waits. */
  whenRested(workspaceId: string): Promise<void> | undefined {
    return this.#lanes.get(workspaceId)?.whenRested();
  }

  /** Resolves when every lane with a call running or about to run rests. */
  whenAllRested(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const lane of this.#lanes.list()) {
      const rested = lane.whenRested();
      if (rested !== undefined) waits.push(rested);
    }
    return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
  }

  /** Resolves once no lane is left: everything landed or was given up. */
  whenIdle(): Promise<void> {
    if (this.#lanes.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters ??= [];
      this.#idleWaiters.push(resolve);
    });
  }

  /** Gives up every lane with `error`, reporting each thing owed once; stops probing. */
  abandonAll(error: unknown): void {
    this.#health.stop();
    for (const lane of this.#lanes.list()) lane.abandon(error);
  }

  // What the lanes call (LaneHost).

  admit(lane: WriteLane<F>): void {
    if (!this.#health.available && lane !== this.#probing) {
      this.#hold(lane);
      return;
    }
    if (this.#readyHead === this.#ready.length && this.#takeSlot(lane)) {
      lane.start();
      return;
    }
    lane.queue('ready');
    this.#ready.push(lane);
  }

  released(lane: WriteLane<F>): void {
    const shared = this.#sharing.size === 0 ? undefined : this.#sharing.get(lane);
    if (shared === undefined) this.#running--;
    else {
      this.#sharing.delete(lane);
      if (--shared.running === 0) this.#running--;
    }
    if (lane === this.#probing) {
      this.#probing = undefined;
      // Whatever the probe's call ended with, a store that is still away gets its next probe.
      this.#health.ensureProbe();
    }
    this.#drainReady();
  }

  observed(lane: WriteLane<F>, verdict: Verdict, error?: unknown): void {
    if (verdict === 'up') {
      if (this.#health.succeeded()) this.#resume();
      return;
    }
    if (verdict === 'down') this.#health.failed(error);
    if (lane === this.#probing && !this.#health.available) this.#probeFailed(error);
  }

  waits(lane: WriteLane<F>): boolean {
    if (!this.#health.available) {
      this.#hold(lane);
      return true;
    }
    this.#joinBacklog(lane);
    return false;
  }

  recovered(lane: WriteLane<F>): void {
    if (this.#backlog.size > 0) this.#backlog.delete(lane);
  }

  rested(lane: WriteLane<F>): void {
    this.#lanes.delete(lane);
    if (this.#backlog.size > 0) {
      this.#backlog.delete(lane);
      this.#held.delete(lane);
    }
    const waiters = this.#idleWaiters;
    if (waiters === undefined || this.#lanes.size > 0) return;
    this.#idleWaiters = undefined;
    for (const resolve of waiters) resolve();
  }

  /** The workspace's lane, or a new one being opened: `opened` once it has been asked. */
  #laneOf(workspaceId: string): WriteLane<F> {
    return this.#lanes.get(workspaceId) ?? this.#lanes.open(new WriteLane(workspaceId, this));
  }

  /** Starts waiting lanes while slots are free; never re-entered, so its loop stays flat. */
  #drainReady(): void {
    if (this.#draining || this.#readyHead === this.#ready.length) return;
    const batch = this.settings.batch;
    if (batch !== undefined && !batch.open) {
      // The lanes it starts write together.
      batch.wave(() => this.#drainReady());
      return;
    }
    this.#draining = true;
    try {
      while (this.#readyHead < this.#ready.length) {
        const lane = this.#ready[this.#readyHead] as WriteLane<F>;
        if (lane.state !== 'ready') {
          this.#readyHead++;
          continue;
        }
        if (!this.#health.available) {
          this.#readyHead++;
          this.#hold(lane);
          continue;
        }
        if (!this.#takeSlot(lane)) break;
        this.#readyHead++;
        lane.start();
      }
      if (this.#readyHead === this.#ready.length) {
        this.#ready = [];
        this.#readyHead = 0;
      } else if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
        this.#ready = this.#ready.slice(this.#readyHead);
        this.#readyHead = 0;
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * A slot for the lane's call. In a wave of a batching store, lanes share one slot per
   * `batchSize`, as their upserts share one call: a wave of 100,000 due workspaces is at most
   * `maxConcurrentWrites` calls of `batchSize` items.
   */
  #takeSlot(lane: WriteLane<F>): boolean {
    const batch = this.settings.batch;
    if (batch?.open === true) {
      const shared = this.#shared;
      if (shared !== undefined && shared.wave === batch.waves && shared.lanes < batch.size) {
        shared.lanes++;
        shared.running++;
        this.#sharing.set(lane, shared);
        return true;
      }
      if (this.#running >= this.#maxConcurrentWrites) return false;
      this.#running++;
      const slot = { wave: batch.waves, lanes: 1, running: 1 };
      this.#shared = slot;
      this.#sharing.set(lane, slot);
      return true;
    }
    if (this.#running >= this.#maxConcurrentWrites) return false;
    this.#running++;
    return true;
  }

  #hold(lane: WriteLane<F>): void {
    // Re-added at the end: a probe that failed goes to the back, so the next one tries
    // another workspace (one on a node that still answers ends the outage at once).
    this.#held.delete(lane);
    this.#held.add(lane);
    lane.queue('held');
    this.#joinBacklog(lane);
    this.#health.held();
  }

  #joinBacklog(lane: WriteLane<F>): void {
    this.#backlog.add(lane);
    if (this.#backlog.size <= this.#maxBacklog) return;
    for (const oldest of this.#backlog) {
      if (this.#backlog.size <= this.#maxBacklog) break;
      if (oldest === lane || oldest.state === 'calling') continue;
      oldest.abandon(
        new EventCoalescerError(
          'EC_BACKLOG_FULL',
          `the backlog passed maxBacklog (${this.#maxBacklog}); the oldest waiting write of workspace ${oldest.workspaceId} is given up`,
        ),
      );
    }
  }

  /** The probe's turn: the lane held longest is tried; `false` when none is held. */
  #probe(): boolean {
    const lane = this.#held.values().next().value;
    if (lane === undefined) return false;
    this.#held.delete(lane);
    this.#probing = lane;
    this.#running++;
    lane.start();
    return true;
  }

  #probeFailed(error: unknown): void {
    if (
      Number.isFinite(this.settings.rule.attempts) ||
      Number.isFinite(this.settings.rule.maxElapsedMs)
    ) {
      for (const lane of [...this.#held]) lane.missedProbe(error);
    }
    this.#health.probeFailed();
  }

  /** The store is back: what was held drains, oldest first, `maxConcurrentWrites` at a time. */
  #resume(): void {
    // In backlog order: by when each began to wait, whatever order the probes took.
    for (const lane of this.#backlog) {
      if (!this.#held.has(lane)) continue;
      lane.queue('ready');
      this.#ready.push(lane);
    }
    this.#held.clear();
    this.#drainReady();
  }
}
