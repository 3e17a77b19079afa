import { mergeFields } from './merge.js';
import type { Fields, Patch } from './types.js';

/** The merged, not yet written patch of one workspace, over the snapshot's fields `F`. */
export class PendingPatch<F extends object = Fields> {
  readonly workspaceId: string;
  /** The merge target: the merge rule works on plain records (see `merge.ts`). */
  readonly fields: Record<string, unknown> = {};
  /**
   * Source labels in first-seen order, each once. Most patches have a single source, kept
   * as a plain string: cheaper than a Set in time and memory.
   */
  sources: string | string[];
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

  addSource(source: string): void {
    const sources = this.sources;
    if (typeof sources === 'string') {
      if (sources !== source) this.sources = [sources, source];
    } else {
      // A plain loop: sources are few, and this runs on every enqueue of a mixed burst.
      for (let i = 0; i < sources.length; i++) if (sources[i] === source) return;
      // concat makes an array of the exact size; push would reserve room for many more.
      this.sources = sources.concat(source);
    }
  }

  /** The merged fields as the store and `onError` receive them. */
  get patch(): Patch<F> {
    // Every value in `fields` came from a `Patch<F>` merged under the rule of `merge.ts`.
    return this.fields as Patch<F>;
  }

  /** Merges a newer patch over this one: its fields win, its sources come after. */
  absorb(newer: PendingPatch<F>): void {
    mergeFields(this.fields, newer.fields);
    this.addSourcesOf(newer);
  }

  /** Adds the sources of a newer patch after this one's. */
  addSourcesOf(newer: PendingPatch<F>): void {
    if (typeof newer.sources === 'string') this.addSource(newer.sources);
    else for (const source of newer.sources) this.addSource(source);
  }

  /** The source labels as the store receives them: `event:a+event:b`. */
  sourceLabel(): string {
    return typeof this.sources === 'string' ? this.sources : this.sources.join('+');
  }
}
