/** The merged, not yet written patch of one workspace. */
export class PendingPatch {
  readonly workspaceId: string;
  fields: Record<string, unknown> = {};
  /**
   * Source labels in first-seen order, each once. Most patches have a single source, kept
   * as a plain string: cheaper than a Set in time and memory.
   */
  sources: string | string[];
  /** Times of the first and the last enqueue, in ms since the coalescer's epoch. */
  firstAt: number;
  lastAt: number;
  /** Links of the quiet queue (see `QuietQueue`). */
  newer: PendingPatch | undefined = undefined;
  older: PendingPatch | undefined = undefined;

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

  /** Adds the sources of a newer patch after this one's. */
  addSourcesOf(newer: PendingPatch): void {
    if (typeof newer.sources === 'string') this.addSource(newer.sources);
    else for (const source of newer.sources) this.addSource(source);
  }

  /** The source labels as the store receives them: `event:a+event:b`. */
  sourceLabel(): string {
    return typeof this.sources === 'string' ? this.sources : this.sources.join('+');
  }
}
