/**
 * A binary min-heap that knows where each item sits, so that an item whose key changed moves,
 * and any item leaves, in O(log n).
 */
export class BinaryHeap<T> {
  readonly #items: T[] = [];
  readonly #at = new Map<T, number>();
  readonly #key: (item: T) => number;

  constructor(key: (item: T) => number) {
    this.#key = key;
  }

  /** The item with the smallest key. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    this.#items.push(item);
    this.#up(this.#items.length - 1);
  }

  delete(item: T): void {
    const index = this.#at.get(item);
    if (index === undefined) return;
    this.#at.delete(item);
    const last = this.#items.pop() as T;
    if (last === item) return;
    this.#items[index] = last;
    this.#at.set(last, index);
    this.update(last);
  }

  /** Moves an item whose key changed to where it now belongs. */
  update(item: T): void {
    const index = this.#at.get(item);
    if (index !== undefined) this.#down(this.#up(index));
  }

  clear(): void {
    this.#items.length = 0;
    this.#at.clear();
  }

  #place(item: T, index: number): void {
    this.#items[index] = item;
    this.#at.set(item, index);
  }

  /** Sifts the item at `index` up; answers where it ends. */
  #up(index: number): number {
    const items = this.#items;
    const item = items[index] as T;
    const key = this.#key(item);
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex] as T;
      if (this.#key(parent) <= key) break;
      this.#place(parent, index);
      index = parentIndex;
    }
    this.#place(item, index);
    return index;
  }

  #down(index: number): void {
    const items = this.#items;
    const item = items[index] as T;
    const key = this.#key(item);
    const length = items.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && this.#key(items[child + 1] as T) < this.#key(items[child] as T)) {
        child++;
      }
      const next = items[child] as T;
      if (this.#key(next) >= key) break;
      this.#place(next, index);
      index = child;
    }
    this.#place(item, index);
  }
}
