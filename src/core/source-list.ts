/**
 * The source labels of a patch with more than one, in first-seen order, each once. A list is
 * immutable and shared: every patch whose sources came in the same order points at the same
 * one, so a pending workspace with mixed sources costs a pointer, not an array of its own.
 */
export class SourceList {
  readonly labels: readonly string[];
  /** `labels` joined with `+`, made once, on the first write. */
  #label: string | undefined;
  /** The lists one more source makes of this one, by that source. */
  #longer: Map<string, SourceList> | undefined;

  private constructor(labels: readonly string[]) {
    this.labels = labels;
  }

  has(source: string): boolean {
    // A plain loop: sources are few, and this runs on every enqueue of a mixed burst.
    const labels = this.labels;
    for (let i = 0; i < labels.length; i++) if (labels[i] === source) return true;
    return false;
  }

  get label(): string {
    if (this.#label === undefined) this.#label = this.labels.join('+');
    return this.#label;
  }

  /** This list with `source` after its labels; `source` is not among them. */
  with(source: string): SourceList {
    const known = this.#longer?.get(source);
    if (known !== undefined) return known;
    const list = new SourceList([...this.labels, source]);
    // Lists are kept for sharing up to a bound, so sources unique to each event (an id in the
    // label, say) cost each patch its own list, not memory that grows without end.
    if (kept < MAX_KEPT) {
      kept++;
      this.#longer ??= new Map();
      this.#longer.set(source, list);
    }
    return list;
  }

  /** The list of `first` then `second`, two different sources. */
  static of(first: string, second: string): SourceList {
    let single = singles.get(first);
    if (single === undefined) {
      single = new SourceList([first]);
      if (kept < MAX_KEPT) {
        kept++;
        singles.set(first, single);
      }
    }
    return single.with(second);
  }
}

/** How many lists the thread keeps for sharing. */
const MAX_KEPT = 4096;
let kept = 0;
/** One-source lists, the roots the shared lists grow from. */
const singles = new Map<string, SourceList>();

/** A patch's sources: one label, or a shared list of several. */
export type Sources = string | SourceList;

/** The sources as the store receives them: `event:a+event:b`. */
export function sourceLabel(sources: Sources): string {
  return typeof sources === 'string' ? sources : sources.label;
}
