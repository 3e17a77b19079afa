import { BinaryHeap } from './binary-heap.js';
import type { PendingPatch } from './pending-patch.js';

/** The deadlines of a pending patch some of whose enqueues set their own windowMs or maxWaitMs. */
class Timed<F extends object> {
  readonly patch: PendingPatch<F>;
  /**
   * Flat pairs of a window and the last enqueue that asked for it: each window counts from
   * the last enqueue of its own kind. A patch sees few kinds, so a plain scan finds one.
   */
  readonly windows: number[];
  /** The earliest `maxWaitMs` deadline: each enqueue's bound counts from that enqueue. */
  maxDueAt: number;
  /** The earliest deadline of all. */
  dueAt = 0;
  /**
   * Where the deadline heap holds it: never later than `dueAt`. A deadline that moves later (a
   * window restarted) leaves it behind, so a steady stream costs no heap work; the heap catches
   * up when this key comes due.
   */
  keyAt = 0;

  constructor(patch: PendingPatch<F>, windows: number[], maxDueAt: number) {
    this.patch = patch;
    this.windows = windows;
    this.maxDueAt = maxDueAt;
  }

  /** Counts an enqueue at `now` that asked for `windowMs` and `maxWaitMs`. */
  enqueued(now: number, windowMs: number, maxWaitMs: number): void {
    const windows = this.windows;
    let i = 0;
    while (i < windows.length && windows[i] !== windowMs) i += 2;
    windows[i] = windowMs;
    windows[i + 1] = now;
    if (now + maxWaitMs < this.maxDueAt) this.maxDueAt = now + maxWaitMs;
  }

  earliest(): number {
    const windows = this.windows;
    let due = this.maxDueAt;
    for (let i = 0; i < windows.length; i += 2) {
      const at = (windows[i] as number) + (windows[i + 1] as number);
      if (at < due) due = at;
    }
    return due;
  }

  shift(by: number): void {
    const windows = this.windows;
    for (let i = 1; i < windows.length; i += 2) windows[i] = (windows[i] as number) - by;
    this.maxDueAt -= by;
    this.dueAt -= by;
    this.keyAt -= by;
  }
}

/**
 * Pending patches with windows of their own, in two heaps: by earliest deadline (the next one
 * due) and by first enqueue (the oldest, for `maxPending`). Patches that use only the
 * coalescer's windows never come here: they keep the quiet queue's O(1) path.
 */
export class TimedPatches<F extends object> {
  readonly #byId = new Map<string, Timed<F>>();
  readonly #byDue = new BinaryHeap<Timed<F>>((timed) => timed.keyAt);
  readonly #byFirst = new BinaryHeap<Timed<F>>((timed) => timed.patch.firstAt);

  get size(): number {
    return this.#byId.size;
  }

  get(workspaceId: string): PendingPatch<F> | undefined {
    return this.#byId.get(workspaceId)?.patch;
  }

  /**
   * Counts an enqueue of the workspace at `now`. A patch new here starts from `windows` (its
   * earlier enqueues, as window/time pairs) and `maxDueAt`. Answers the patch's new earliest
   * deadline.
   */
  enqueued(
    patch: PendingPatch<F>,
    now: number,
    windowMs: number,
    maxWaitMs: number,
    windows: number[] = [],
    maxDueAt = Infinity,
  ): number {
    let timed = this.#byId.get(patch.workspaceId);
    if (timed === undefined) {
      timed = new Timed(patch, windows, maxDueAt);
      timed.enqueued(now, windowMs, maxWaitMs);
      timed.dueAt = timed.earliest();
      timed.keyAt = timed.dueAt;
      this.#byId.set(patch.workspaceId, timed);
      this.#byDue.push(timed);
      this.#byFirst.push(timed);
    } else {
      timed.enqueued(now, windowMs, maxWaitMs);
      timed.dueAt = timed.earliest();
      if (timed.dueAt < timed.keyAt) {
        timed.keyAt = timed.dueAt;
        this.#byDue.update(timed);
      }
    }
    return timed.dueAt;
  }

  /** Whether the patch's earliest deadline has passed by its last enqueue; undefined: not here. */
  isOverdue(patch: PendingPatch<F>): boolean | undefined {
    const timed = this.#byId.get(patch.workspaceId);
    return timed === undefined ? undefined : timed.dueAt <= patch.lastAt;
  }

  take(workspaceId: string): PendingPatch<F> | undefined {
    const timed = this.#byId.get(workspaceId);
    if (timed === undefined) return undefined;
    this.#byId.delete(workspaceId);
    this.#byDue.delete(timed);
    this.#byFirst.delete(timed);
    return timed.patch;
  }

  /** The earliest deadline of all, or Infinity; possibly earlier (see `keyAt`), never later. */
  nextDueAt(): number {
    return this.#byDue.peek()?.keyAt ?? Infinity;
  }

  /** Takes the patch with the earliest deadline if it is due by `now`. */
  takeDue(now: number): PendingPatch<F> | undefined {
    for (let top = this.#byDue.peek(); top !== undefined && top.keyAt <= now; ) {
      if (top.dueAt <= now) return this.take(top.patch.workspaceId);
      top.keyAt = top.dueAt;
      this.#byDue.update(top);
      top = this.#byDue.peek();
    }
    return undefined;
  }

  /** The patch enqueued first. */
  oldest(): PendingPatch<F> | undefined {
    return this.#byFirst.peek()?.patch;
  }

  takeAll(): PendingPatch<F>[] {
    const patches = [...this.#byId.values()].map((timed) => timed.patch);
    this.#byId.clear();
    this.#byDue.clear();
    this.#byFirst.clear();
    return patches;
  }

  /** Moves every time `by` ms earlier (the schedule's epoch moved): no order changes. */
  shift(by: number): void {
    for (const timed of this.#byId.values()) timed.shift(by);
  }
}
