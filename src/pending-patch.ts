/** The merged, not yet written patch of one workspace. */
export class PendingPatch {
  readonly workspaceId: string;
  fields: Record<string, unknown> = {};
  /** Source labels in first-seen order; a Set keeps each once. */
  readonly sources = new Set<string>();
  /** Time of the first enqueue, for `maxWaitMs`. */
  readonly firstAt: number;
  /** Time of the last enqueue, for `windowMs`. */
  lastAt: number;
  /** Failed tries of this patch so far. */
  failures = 0;
  /** Links of the quiet queue (see `QuietQueue`). */
  newer: PendingPatch | undefined = undefined;
  older: PendingPatch | undefined = undefined;

  constructor(workspaceId: string, now: number) {
    this.workspaceId = workspaceId;
    this.firstAt = now;
    this.lastAt = now;
  }

  /** The source labels as the store receives them: `event:a+event:b`. */
  sourceLabel(): string {
    let label = '';
    for (const source of this.sources) label = label === '' ? source : `${label}+${source}`;
    return label;
  }
}
