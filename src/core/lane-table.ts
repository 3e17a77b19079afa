/**
 * The lanes of the workspaces with a store call running or waiting, by workspace id.
 *
 * A store that answers at once makes every write open a lane and let it rest before the write
 * returns. In a `Map`, that is an insert and a delete each time, and a table the engine gives
 * back whenever the map empties and allocates again on the next insert: about a quarter of a
 * `flushAll`. So the lane being opened is kept beside the map, and goes into it only if it is
 * still busy once opened (a call in flight, a turn to wait for).
 */
export class LaneTable<L extends { readonly workspaceId: string }> {
  readonly #byId = new Map<string, L>();
  /** The lane being opened: always the newest. */
  #opening: L | undefined;

  get size(): number {
    return this.#opening === undefined ? this.#byId.size : this.#byId.size + 1;
  }

  get(workspaceId: string): L | undefined {
    const opening = this.#opening;
    if (opening !== undefined && opening.workspaceId === workspaceId) return opening;
    return this.#byId.get(workspaceId);
  }

  has(workspaceId: string): boolean {
    return this.get(workspaceId) !== undefined;
  }

  /** Adds a lane, for its first call to be made; {@link opened} once it was asked to. */
  open(lane: L): L {
    // Opened from within another lane's opening (a store calling back in): that one waits.
    if (this.#opening !== undefined) this.#byId.set(this.#opening.workspaceId, this.#opening);
    this.#opening = lane;
    return lane;
  }

  /**
   * The lane has been asked for its first call: kept in the table unless it has rested. A no-op
   * for a lane that is not the one being opened.
   */
  opened(lane: L): void {
    if (this.#opening !== lane) return;
    this.#opening = undefined;
    this.#byId.set(lane.workspaceId, lane);
  }

  delete(lane: L): void {
    if (this.#opening === lane) this.#opening = undefined;
    else this.#byId.delete(lane.workspaceId);
  }

  /** The lanes, oldest first, as a new array: callers may add and remove lanes meanwhile. */
  list(): L[] {
    const lanes = [...this.#byId.values()];
    if (this.#opening !== undefined) lanes.push(this.#opening);
    return lanes;
  }
}
