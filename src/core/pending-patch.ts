import { mergeFields } from './merge.js';
import { SourceList, type Sources, sourceLabel } from './source-list.js';
import type { Fields, Patch } from './types.js';

/** The merged, not yet written patch of one workspace, over the snapshot's fields `F`. */
export class PendingPatch<F extends object = Fields> {
  readonly workspaceId: string;
  /** The merge target: the merge rule works on plain records (see `merge.ts`). */
  readonly fields: Record<string, unknown> = {};
  /** Source labels in first-seen order, each once: most patches have a single one. */
  sources: Sources;
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
    if (sources === source) return;
    if (typeof sources === 'string') this.sources = SourceList.of(sources, source);
    else if (!sources.has(source)) this.sources = sources.with(source);
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
    const sources = newer.sources;
    if (typeof sources === 'string') this.addSource(sources);
    else for (const source of sources.labels) this.addSource(source);
  }

  /** The source labels as the store receives them: `event:a+event:b`. */
  sourceLabel(): string {
    return sourceLabel(this.sources);
  }
}
