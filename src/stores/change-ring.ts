/**
 * The memory store's change feed: each change gets the next position, and the most recent
 * ones are kept in a bounded ring, so that a subscriber can resume after the last it saw.
 */

/** A position: this ring's epoch (so another store's positions are never taken for its own), then a count. */
const POSITION = /^([0-9a-z]+)-(\d+)$/;

export class ChangeRing<C> {
  readonly #epoch = Math.floor(Math.random() * 2 ** 40).toString(36);
  #count = 0;
  readonly #kept: C[] = [];
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The position of the last change, or the start: what a new subscriber goes on from. */
  get position(): string {
    return `${this.#epoch}-${this.#count}`;
  }

  /** Whether anyone could still ask for what is kept: with no room, nothing is built. */
  get keeps(): boolean {
    return this.#capacity > 0;
  }

  /** The next change's position; `add` it once built. */
  next(): string {
    this.#count++;
    return this.position;
  }

  add(change: C): void {
    if (this.#capacity === 0) return;
    this.#kept[(this.#count - 1) % this.#capacity] = change;
  }

  /**
   * The changes after `since`, oldest first, or `undefined` when some of them are no longer
   * kept, or `since` is not a position of this ring.
   */
  after(since: string): C[] | undefined {
    const match = POSITION.exec(since);
    if (match === null || match[1] !== this.#epoch) return undefined;
    const seen = Number(match[2]);
    if (seen > this.#count) return undefined;
    const missed = this.#count - seen;
    if (missed > this.#capacity) return undefined;
    const changes: C[] = [];
    for (let at = seen; at < this.#count; at++) changes.push(this.#kept[at % this.#capacity] as C);
    return changes;
  }
}
