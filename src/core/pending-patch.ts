import {
  mergeFields,
  prototypePolluted,
  type StagedFields,
  setField,
  stageField,
  stageFields,
} from './merge.js';
import {
  closePass,
  interruptOpenMerge,
  type OpenMerge,
  openMerge,
  takeInterrupted,
  type Undoable,
} from './open-merge.js';
import { ListFamily, type SharedList } from './shared-list.js';
import type { Fields, Patch } from './types.js';

/** How many lists of source labels, and of field names, the thread keeps for sharing. */
const MAX_SHARED_LISTS = 4096;
const sourceLists = new ListFamily(MAX_SHARED_LISTS);
const fieldNames = new ListFamily(MAX_SHARED_LISTS);

/** Past this many fields (its slots), a patch keeps them in a record. */
const MAX_LISTED_FIELDS = 4;

/**
 * The merged, not yet written patch of one workspace, over the snapshot's fields `F`.
 *
 * While pending, its fields are values by position in a list of their names, which is shared
 * by every patch that saw the same names in the same order, in slots of the patch itself. An
 * enqueue then stores each value into a slot, where a record would take a keyed store, and a
 * pending workspace holds no record. The store receives a record, made once, when it is to be
 * written (or once a patch has more than MAX_LISTED_FIELDS fields).
 */
const hasOwn = Object.hasOwn;

export class PendingPatch<F extends object = Fields> implements Undoable {
  /**
   * One patch kept for the life of the class: when no workspace is pending, a full collection
   * would otherwise drop the engine's hidden class of patches, and the enqueue's optimised code
   * with it, to be rebuilt during the next burst.
   */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: held, never read
  static readonly #kept = new PendingPatch('', 0, '');

  readonly workspaceId: string;
  /** The names of the values in slots, in first-merged order, until they are a record. */
  #names: SharedList = fieldNames.empty;
  #value0: unknown = undefined;
  #value1: unknown = undefined;
  #value2: unknown = undefined;
  #value3: unknown = undefined;
  /** The fields as the record the store receives, once made. */
  #record: Record<string, unknown> | undefined = undefined;
  /** Source labels in first-seen order, each once: most patches have a single one. */
  sources: string | SharedList;
  /** Times of the first and the last enqueue, in ms since the coalescer's epoch. */
  firstAt: number;
  lastAt: number;
  /** Links of the quiet queue (see `QuietQueue`). */
  newer: PendingPatch<F> | undefined = undefined;
  older: PendingPatch<F> | undefined = undefined;

  constructor(workspaceId: string, now: number, source: string) {
    this.workspaceId = workspaceId;
    this.firstAt = now;
    this.lastAt = now;
    this.sources = source;
  }

  /**
   * Merges the own defined fields of `fields` as it reads them, in one pass, each getter once.
   * Answers `undefined` when they are merged. Answers the fields, all read and none merged,
   * when the pass could not finish in place — the patch needs a record, or a getter called a
   * coalescer (see `open-merge.ts`) — for the caller to look the patch up again and `merge`
   * them. A getter that throws leaves the patch as it was.
   */
  mergeOnePass(fields: Record<string, unknown>): StagedFields | undefined {
    if (this.#record !== undefined) return stageFields(fields);
    const open = openMerge;
    if (open.patch !== undefined) interruptOpenMerge();
    open.patch = this;
    open.written = 0;
    open.names = this.#names;
    const ownOnly = prototypePolluted();
    let staged: StagedFields | undefined;
    let i = 0;
    try {
      for (const name in fields) {
        if (ownOnly && !hasOwn(fields, name)) continue;
        const value = fields[name];
        if (value === undefined) continue;
        if (staged === undefined) {
          // The getter just read called a coalescer, which put the pass back.
          if (open.patch !== this) staged = takeInterrupted();
          else {
            const names = this.#names;
            // Patches mostly bring their fields in the order first seen: the same place first.
            let at = names.items[i] === name ? i : names.indexOf(name);
            i++;
            if (at === -1) at = names.items.length;
            // A fifth name: the patch needs a record, which a pass does not put back.
            if (at === MAX_LISTED_FIELDS) staged = this.#putBack();
            else {
              if (at === names.items.length) this.#names = names.with(name);
              open.written |= 1 << at;
              this.#setKeeping(at, value, open);
              continue;
            }
          }
        }
        stageField(staged, name, value);
      }
    } catch (error) {
      if (open.patch === this) {
        this.undo(open, undefined);
        closePass();
      } else if (staged === undefined) takeInterrupted();
      throw error;
    }
    if (staged !== undefined) return staged;
    // A proxy's trap may call a coalescer after the last field too.
    if (open.patch !== this) return takeInterrupted();
    closePass();
    return undefined;
  }

  /** Puts the pass back and answers the fields it had merged. */
  #putBack(): StagedFields {
    const staged: StagedFields = { keys: [], values: [], count: 0 };
    this.undo(openMerge, staged);
    closePass();
    return staged;
  }

  /** Puts back the names and values `open` kept; the fields the pass wrote go to `into`. */
  undo(open: OpenMerge, into: StagedFields | undefined): void {
    if (into !== undefined) {
      const items = this.#names.items;
      for (let at = 0; at < items.length; at++) {
        if ((open.written & (1 << at)) !== 0) stageField(into, items[at] as string, this.#get(at));
      }
    }
    this.#names = open.names ?? fieldNames.empty;
    const written = open.written;
    if ((written & 1) !== 0) this.#value0 = open.value0;
    if ((written & 2) !== 0) this.#value1 = open.value1;
    if ((written & 4) !== 0) this.#value2 = open.value2;
    if ((written & 8) !== 0) this.#value3 = open.value3;
  }

  /** Merges fields read by `stageFields`, the later values winning, and lets go of them. */
  merge(staged: StagedFields): void {
    const { keys, values, count } = staged;
    for (let i = 0; i < count; i++) {
      const name = keys[i] as string;
      const value = values[i];
      values[i] = undefined;
      if (this.#record === undefined) {
        const names = this.#names;
        // Patches mostly bring their fields in the order first seen: try the same place first.
        const at = names.items[i] === name ? i : names.indexOf(name);
        if (at !== -1) {
          this.#set(at, value);
          continue;
        }
        const length = names.items.length;
        if (length < MAX_LISTED_FIELDS) {
          this.#names = names.with(name);
          this.#set(length, value);
          continue;
        }
      }
      setField(this.#recordOf(), name, value);
    }
  }

  /** Copies the merged fields onto `target`, theirs winning. */
  mergeInto(target: Record<string, unknown>): void {
    if (this.#record !== undefined) {
      mergeFields(target, this.#record);
      return;
    }
    const items = this.#names.items;
    for (let i = 0; i < items.length; i++) setField(target, items[i] as string, this.#get(i));
  }

  /** The merged fields as the store and `onError` receive them. */
  get patch(): Patch<F> {
    // Every value came from a `Patch<F>` merged under the rule of `merge.ts`.
    return this.#recordOf() as Patch<F>;
  }

  /** Merges a newer patch over this one: its fields win, its sources come after. */
  absorb(newer: PendingPatch<F>): void {
    newer.mergeInto(this.#recordOf());
    this.addSourcesOf(newer);
  }

  /** The fields as a record, from now on: made from the listed values the first time. */
  #recordOf(): Record<string, unknown> {
    if (this.#record !== undefined) return this.#record;
    const record: Record<string, unknown> = {};
    this.mergeInto(record);
    this.#record = record;
    this.#value0 = this.#value1 = this.#value2 = this.#value3 = undefined;
    return record;
  }

  #get(at: number): unknown {
    switch (at) {
      case 0:
        return this.#value0;
      case 1:
        return this.#value1;
      case 2:
        return this.#value2;
      default:
        return this.#value3;
    }
  }

  /** Sets a slot, keeping what it held in `open` (each slot is set once in a pass). */
  #setKeeping(at: number, value: unknown, open: OpenMerge): void {
    switch (at) {
      case 0:
        open.value0 = this.#value0;
        this.#value0 = value;
        return;
      case 1:
        open.value1 = this.#value1;
        this.#value1 = value;
        return;
      case 2:
        open.value2 = this.#value2;
        this.#value2 = value;
        return;
      default:
        open.value3 = this.#value3;
        this.#value3 = value;
    }
  }

  #set(at: number, value: unknown): void {
    switch (at) {
      case 0:
        this.#value0 = value;
        return;
      case 1:
        this.#value1 = value;
        return;
      case 2:
        this.#value2 = value;
        return;
      default:
        this.#value3 = value;
    }
  }

  addSource(source: string): void {
    const sources = this.sources;
    if (sources === source) return;
    if (typeof sources === 'string') this.sources = sourceLists.empty.with(sources).with(source);
    else if (sources.indexOf(source) === -1) this.sources = sources.with(source);
  }

  /** Adds the sources of a newer patch after this one's. */
  addSourcesOf(newer: PendingPatch<F>): void {
    const sources = newer.sources;
    if (typeof sources === 'string') this.addSource(sources);
    else for (const source of sources.items) this.addSource(source);
  }

  /** The source labels as the store receives them: `event:a+event:b`. */
  sourceLabel(): string {
    const sources = this.sources;
    return typeof sources === 'string' ? sources : sources.joined();
  }
}
