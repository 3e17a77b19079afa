/**
 * Immutable lists of strings, shared: every list built by appending the same strings in the
 * same order, from the same family's empty list, is one object. Pending patches use them for
 * their source labels and their field names, so that the many workspaces that saw the same
 * sources or fields in the same order point at one list instead of each holding an array.
 */
export class SharedList {
  readonly items: readonly string[];
  readonly #family: ListFamily;
  /** `items` joined with `+`, made once, when first asked for. */
  #joined: string | undefined;
  /** The lists one more item makes of this one, by that item. */
  #longer: Map<string, SharedList> | undefined;

  constructor(items: readonly string[], family: ListFamily) {
    this.items = items;
    this.#family = family;
  }

  /** Where `item` is in the list, or -1. */
  indexOf(item: string): number {
    // A plain loop: lists are short, and this runs on every enqueue.
    const items = this.items;
    for (let i = 0; i < items.length; i++) if (items[i] === item) return i;
    return -1;
  }

  /** The items joined with `+`: a patch's sources as the store receives them. */
  joined(): string {
    if (this.#joined === undefined) this.#joined = this.items.join('+');
    return this.#joined;
  }

  /** This list with `item` after its items; `item` is not among them. */
  with(item: string): SharedList {
    const known = this.#longer?.get(item);
    if (known !== undefined) return known;
    const list = new SharedList([...this.items, item], this.#family);
    // Kept for sharing up to the family's bound, so that strings unique to each event (an id
    // in a source label, say) cost each patch a list of its own, not memory without end.
    if (this.#family.keep()) {
      this.#longer ??= new Map();
      this.#longer.set(item, list);
    }
    return list;
  }
}

/** The lists grown from one empty list, and how many of them are kept for sharing. */
export class ListFamily {
  readonly empty: SharedList;
  readonly #maxKept: number;
  #kept = 0;

  constructor(maxKept: number) {
    this.#maxKept = maxKept;
    this.empty = new SharedList([], this);
  }

  /** Whether one more list may be kept for sharing (and counts it if so). */
  keep(): boolean {
    if (this.#kept >= this.#maxKept) return false;
    this.#kept++;
    return true;
  }
}
