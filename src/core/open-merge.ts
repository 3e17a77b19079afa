/**
 * The merge in progress. An enqueue writes a patch's fields straight into the pending patch as
 * it reads them, in one pass, and keeps what it overwrote until the pass ends. Reading a field
 * can run a getter, and a getter can throw or call the coalescer. A throw puts the patch back
 * as it was: nothing merged. A call into any coalescer first puts the patch back and keeps the
 * fields read so far for the enqueue, which then reads the rest before merging any (see
 * `PendingPatch.mergeOnePass`). What the call sees, and what the enqueue leaves, is as if the
 * enqueue had read every field before merging one.
 *
 * One pass is open at a time in a thread: passes only nest through a getter, and a pass that
 * opens puts back the one open before it.
 */
import type { StagedFields } from './merge.js';
import type { SharedList } from './shared-list.js';

/** A patch a pass can put back. */
export interface Undoable {
  /** Puts back the names and values `open` kept; the fields the pass wrote go to `into`. */
  undo(open: OpenMerge, into: StagedFields | undefined): void;
}

export interface OpenMerge {
  /** The patch of the open pass; none between passes. */
  patch: Undoable | undefined;
  /** The patch's names before the pass, and what each slot it has written held. */
  names: SharedList | undefined;
  value0: unknown;
  value1: unknown;
  value2: unknown;
  value3: unknown;
  /** The slots the pass has written, one bit each. */
  written: number;
}

export const openMerge: OpenMerge = {
  patch: undefined,
  names: undefined,
  value0: undefined,
  value1: undefined,
  value2: undefined,
  value3: undefined,
  written: 0,
};

/**
 * The fields of passes a call put back, innermost last: a pass finds out when its getter
 * returns, and the getters of nested passes return innermost first.
 */
const interrupted: StagedFields[] = [];

/** Ends the open pass: what it wrote stays. */
export function closePass(): void {
  openMerge.patch = undefined;
  openMerge.names = undefined;
  openMerge.value0 = openMerge.value1 = openMerge.value2 = openMerge.value3 = undefined;
}

/**
 * Called first by every method that reads or changes pending patches, since a getter of an
 * enqueue in progress may be the caller: the open pass, if any, is put back, its fields kept.
 */
export function interruptOpenMerge(): void {
  const patch = openMerge.patch;
  if (patch === undefined) return;
  const fields: StagedFields = { keys: [], values: [], count: 0 };
  patch.undo(openMerge, fields);
  interrupted.push(fields);
  closePass();
}

/** The fields the innermost interrupted pass had read, for it to finish with. */
export function takeInterrupted(): StagedFields {
  return interrupted.pop() ?? { keys: [], values: [], count: 0 };
}
