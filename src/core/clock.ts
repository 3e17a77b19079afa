/**
 * Timestamps for the store (`timestamps: true`): what orders writes across replicas.
 * Only timestamps live here; when pending patches are due is the deadlines' business.
 */
export class StoreClock {
  #last = 0;

  /** Milliseconds of the wall clock, strictly increasing across the calls of this clock. */
  next(): number {
    const now = Date.now();
    this.#last = now > this.#last ? now : this.#last + 1;
    return this.#last;
  }
}
