/**
 * When each pending patch is due: one timer for all workspaces, the quiet queue for the
 * `windowMs` deadlines, first-enqueue order for `maxWaitMs`, a heap for patches whose enqueues
 * set windows of their own, and the clock they count in. What happens to a due patch is the
 * caller's business (`onDue`).
 */
import { PendingPatch } from './pending-patch.js';
import { QuietQueue } from './quiet-queue.js';
import { TimedPatches } from './timed-patches.js';
import { clearTimer, monotonicNow, setTimer, type Timer } from './timers.js';

/** Pending times stay below this many ms from the epoch (2^30: small integers in V8). */
const EPOCH_SPAN_MS = 0x40000000;

export class Deadlines<F extends object> {
  readonly #windowMs: number;
  readonly #maxWaitMs: number;
  /** How soon a new patch can be due: the shorter of `windowMs` and `maxWaitMs`. */
  readonly #firstDeadlineMs: number;
  readonly #onDue: (patch: PendingPatch<F>) => void;
  readonly #wave: (handOver: () => void) => void;
  /** Pending patches in first-enqueue order: the order of their `maxWaitMs` deadlines. */
  readonly #pending = new Map<string, PendingPatch<F>>();
  /** The same patches in last-enqueue order: the order of their `windowMs` deadlines. */
  readonly #quiet = new QuietQueue();
  /** Patches with windows of their own, kept apart so that the others keep their O(1) path. */
  readonly #timed = new TimedPatches<F>();
  /** One timer for all pending patches, armed for the earliest deadline. */
  #timer: Timer | undefined;
  /** The time the timer was armed for: when it fires, at least that much time has passed. */
  #armedFor = 0;
  /** When the timer last fired: time never reads earlier than this, nor than a pending patch. */
  #firedAt = 0;
  /**
   * With a leading edge: workspaces whose write started within `windowMs`, by start time
   * (renewed entries move to the end), so the expired ones are at the front. Only these
   * are remembered, and each only for `windowMs`.
   */
  readonly #recent: Map<string, number> | undefined;
  /** How long a write stays recent: the longest window any enqueue asked for. */
  #recentSpan: number;
  /** Pending times count from here (see `#now`). */
  #epoch = monotonicNow();

  /**
   * `onDue` receives each patch once it is due, already taken out of the schedule, inside
   * `wave`, which runs every hand-over of one firing (the writes of one turn go together).
   * `leading` keeps track of recent writes, for {@link Deadlines.isQuiet}.
   */
  constructor(
    windowMs: number,
    maxWaitMs: number,
    leading: boolean,
    onDue: (patch: PendingPatch<F>) => void,
    wave: (handOver: () => void) => void = (handOver) => handOver(),
  ) {
    this.#wave = wave;
    this.#windowMs = windowMs;
    this.#maxWaitMs = maxWaitMs;
    this.#firstDeadlineMs = Math.min(windowMs, maxWaitMs);
    this.#recent = leading ? new Map() : undefined;
    this.#recentSpan = windowMs;
    this.#onDue = onDue;
  }

  /** Nothing pending for the workspace, and no write of it started within `windowMs`. */
  isQuiet(workspaceId: string, windowMs = this.#windowMs): boolean {
    if (this.#pending.has(workspaceId)) return false;
    if (this.#timed.size !== 0 && this.#timed.get(workspaceId) !== undefined) return false;
    const recent = this.#recent;
    if (recent === undefined || recent.size === 0) return true;
    const now = this.#now();
    this.#forgetOldWrites(now);
    const startedAt = recent.get(workspaceId);
    return startedAt === undefined || startedAt + windowMs <= now;
  }

  /** Remembers that the workspace's write starts now (leading edge only). */
  writeStarted(workspaceId: string): void {
    const recent = this.#recent;
    if (recent === undefined) return;
    const now = this.#now();
    recent.delete(workspaceId);
    recent.set(workspaceId, now);
    // The timer also releases what the window no longer needs.
    if (this.#timer === undefined) this.#arm(now);
  }

  /**
   * Whether the patch's `maxWaitMs` has passed by its last enqueue (with windows of its own:
   * whether any of its deadlines has).
   */
  isOverdue(patch: PendingPatch<F>): boolean {
    if (this.#timed.size !== 0) {
      const overdue = this.#timed.isOverdue(patch);
      if (overdue !== undefined) return overdue;
    }
    return patch.lastAt - patch.firstAt >= this.#maxWaitMs;
  }

  #forgetOldWrites(now: number): void {
    const recent = this.#recent;
    if (recent === undefined) return;
    for (const [workspaceId, startedAt] of recent) {
      if (startedAt + this.#recentSpan > now) return;
      recent.delete(workspaceId);
    }
  }

  /** Pending workspaces. */
  get size(): number {
    return this.#pending.size + this.#timed.size;
  }

  /**
   * The workspace's pending patch with its window restarted and `source` added: a new one,
   * due in `windowMs`, when there is none. Only for a workspace whose patch has no windows of
   * its own: {@link touchTimed} tells, and serves the others.
   */
  touch(workspaceId: string, source: string): PendingPatch<F> {
    const now = this.touchTime();
    let patch = this.#pending.get(workspaceId);
    if (patch === undefined) {
      patch = new PendingPatch(workspaceId, now, source);
      this.schedule(patch, now);
    } else this.touched(patch, now, source);
    return patch;
  }

  /** Schedules a new patch made at `now` ({@link touchTime}), due in `windowMs`. */
  schedule(patch: PendingPatch<F>, now: number): void {
    this.#pending.set(patch.workspaceId, patch);
    this.#quiet.append(patch);
    // Without a timer nothing else is pending, so this patch's deadline is the earliest.
    if (this.#timer === undefined) this.#arm(now);
    // A timer kept for the leading edge's bookkeeping, or for patches with windows of their
    // own, may be due after this patch's first deadline: the earlier deadline wins.
    else if (now + this.#firstDeadlineMs < this.#armedFor) {
      clearTimer(this.#timer);
      this.#arm(now);
    }
  }

  /** Restarts the window of a pending patch without windows of its own, adding `source`. */
  touched(patch: PendingPatch<F>, now: number, source: string): void {
    patch.lastAt = now;
    // A hot key is already the newest: skip the relinking.
    if (patch !== this.#quiet.newest) this.#quiet.touch(patch);
    patch.addSource(source);
  }

  /**
   * Like {@link touch}, for an enqueue that asks for its own `windowMs` and `maxWaitMs`: the
   * patch is due at the earliest deadline any of its enqueues demands, each window counted
   * from the last enqueue that asked for it, each bound from the enqueue that set it.
   */
  touchTimed(
    workspaceId: string,
    source: string,
    windowMs: number,
    maxWaitMs: number,
  ): PendingPatch<F> {
    const ownWindows = windowMs !== this.#windowMs || maxWaitMs !== this.#maxWaitMs;
    if (!ownWindows && this.#timed.get(workspaceId) === undefined) {
      return this.touch(workspaceId, source);
    }
    const now = this.touchTime();
    if (windowMs > this.#recentSpan) this.#recentSpan = windowMs;
    let patch = this.#pending.get(workspaceId);
    let dueAt: number;
    if (patch !== undefined) {
      // Its first window of its own: the patch leaves the uniform schedule with its deadlines.
      this.#unschedule(patch);
      const lastAt = patch.lastAt;
      patch.lastAt = now;
      patch.addSource(source);
      dueAt = this.#timed.enqueued(
        patch,
        now,
        windowMs,
        maxWaitMs,
        [this.#windowMs, lastAt],
        patch.firstAt + this.#maxWaitMs,
      );
    } else {
      patch = this.#timed.get(workspaceId);
      if (patch === undefined) patch = new PendingPatch(workspaceId, now, source);
      else {
        patch.lastAt = now;
        patch.addSource(source);
      }
      dueAt = this.#timed.enqueued(patch, now, windowMs, maxWaitMs);
    }
    if (this.#timer === undefined) this.#arm(now);
    // An earlier deadline than the timer's wins; while the timer hands over (armed for now or
    // earlier), it re-arms for what is left itself.
    else if (dueAt < this.#armedFor && this.#armedFor > now) {
      clearTimer(this.#timer);
      this.#arm(now);
    }
    return patch;
  }

  /** Patches with windows of their own. */
  get timedCount(): number {
    return this.#timed.size;
  }

  /**
   * Now, for an enqueue. Should the clock read earlier than the newest time in the quiet queue,
   * or than the timer's last firing, time stands still there: the queue stays in order.
   */
  touchTime(): number {
    const now = this.#now();
    const newest = this.#quiet.newest;
    const floor =
      newest !== undefined && newest.lastAt > this.#firedAt ? newest.lastAt : this.#firedAt;
    return now < floor ? this.#standStill(floor) : now;
  }

  /** The workspace's pending patch, left in the schedule. */
  get(workspaceId: string): PendingPatch<F> | undefined {
    const patch = this.#pending.get(workspaceId);
    if (patch !== undefined || this.#timed.size === 0) return patch;
    return this.#timed.get(workspaceId);
  }

  /** Takes the workspace's pending patch out of the schedule. */
  take(workspaceId: string): PendingPatch<F> | undefined {
    const patch = this.#pending.get(workspaceId);
    if (patch !== undefined) this.#unschedule(patch);
    else if (this.#timed.size !== 0) return this.#timed.take(workspaceId);
    return patch;
  }

  /** Takes the patch enqueued first out of the schedule. */
  takeOldest(): PendingPatch<F> | undefined {
    const oldest = this.#pending.values().next().value;
    const timed = this.#timed.size === 0 ? undefined : this.#timed.oldest();
    if (timed !== undefined && (oldest === undefined || timed.firstAt < oldest.firstAt)) {
      return this.#timed.take(timed.workspaceId);
    }
    if (oldest !== undefined) this.#unschedule(oldest);
    return oldest;
  }

  /** Takes every pending patch, in first-enqueue order, and stops the timer. */
  takeAll(): PendingPatch<F>[] {
    let patches = [...this.#pending.values()];
    this.#pending.clear();
    this.#quiet.clear();
    if (this.#timed.size !== 0) {
      // Stable: patches first enqueued in the same millisecond keep their schedule's order.
      patches = patches.concat(this.#timed.takeAll()).sort((a, b) => a.firstAt - b.firstAt);
    }
    this.disarm();
    return patches;
  }

  /** Stops the timer and forgets recent writes: the coalescer is closed. */
  stop(): void {
    this.disarm();
    this.#recent?.clear();
  }

  disarm(): void {
    if (this.#timer === undefined) return;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #unschedule(patch: PendingPatch<F>): void {
    this.#pending.delete(patch.workspaceId);
    this.#quiet.unlink(patch);
  }

  /**
   * Milliseconds since this schedule's epoch, as a small integer: V8 keeps small
   * integers unboxed in a patch's fields, and a boxed double costs 16 bytes each.
   * `performance.now()` is monotonic, so steps of the wall clock (NTP, a resumed VM) move no
   * deadline, and fake timers drive it (looked up on each call, so also when installed after
   * import). Should it still read earlier than a time already seen (fake timers installed
   * while patches were pending), time stands still instead: `touch` holds it at the newest
   * pending time, the timer's own firing moves it on (see `#onTimer`).
   */
  #now(): number {
    const elapsed = monotonicNow() - this.#epoch;
    if (elapsed >= 0 && elapsed < EPOCH_SPAN_MS) return elapsed | 0;
    return elapsed < 0 ? this.#standStill(0) : this.#rebase();
  }

  /** Moves the epoch so that now reads `at`: a clock that stepped back is not followed. */
  #standStill(at: number): number {
    this.#epoch = monotonicNow() - at;
    return at;
  }

  /** Moves the epoch to now, shifting pending times with it (at most every 12 days). */
  #rebase(): number {
    const shift = Math.floor(monotonicNow() - this.#epoch);
    this.#epoch += shift;
    this.#armedFor -= shift;
    this.#firedAt -= shift;
    this.#timed.shift(shift);
    for (const patch of this.#pending.values()) {
      patch.firstAt -= shift;
      patch.lastAt -= shift;
    }
    const recent = this.#recent;
    if (recent !== undefined) for (const [id, at] of recent) recent.set(id, at - shift);
    return 0;
  }

  #nextDeadline(): number {
    const oldestWrite = this.#recent?.values().next().value;
    let next = oldestWrite === undefined ? Infinity : oldestWrite + this.#recentSpan;
    if (this.#timed.size !== 0) next = Math.min(next, this.#timed.nextDueAt());
    const quiet = this.#quiet.oldest;
    if (quiet === undefined) return next;
    const byWindow = Math.min(quiet.lastAt + this.#windowMs, next);
    if (this.#maxWaitMs === Infinity) return byWindow;
    const first = this.#pending.values().next().value as PendingPatch<F>;
    return Math.min(byWindow, first.firstAt + this.#maxWaitMs);
  }

  #arm(now: number): void {
    const deadline = this.#nextDeadline();
    if (deadline === Infinity) return;
    this.#armedFor = Math.max(now, deadline);
    this.#timer = setTimer(this.#onTimer, this.#armedFor - now);
  }

  /**
   * Hands over every patch that is due. The timer may fire before the earliest deadline
   * (the patch it was armed for was touched since); then it only re-arms.
   */
  readonly #onTimer = (): void => {
    let now = this.#now();
    // The timer waited the whole delay even if the wall clock says less: it stepped back.
    if (now < this.#armedFor) now = this.#standStill(this.#armedFor);
    this.#firedAt = now;
    // `#timer` stays set while handing over, so enqueues made meanwhile do not arm.
    this.#wave(() => this.#handOver(now));
    this.#forgetOldWrites(now);
    this.#timer = undefined;
    this.#arm(now);
  };

  #handOver(now: number): void {
    for (let patch = this.#quiet.oldest; patch !== undefined; patch = this.#quiet.oldest) {
      if (patch.lastAt + this.#windowMs > now) break;
      this.#unschedule(patch);
      this.#onDue(patch);
    }
    if (this.#maxWaitMs !== Infinity) {
      for (const patch of this.#pending.values()) {
        if (patch.firstAt + this.#maxWaitMs > now) break;
        this.#unschedule(patch);
        this.#onDue(patch);
      }
    }
    for (let patch = this.#timed.takeDue(now); patch !== undefined; ) {
      this.#onDue(patch);
      patch = this.#timed.takeDue(now);
    }
  }
}
