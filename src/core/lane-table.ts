/**
 * The lanes of the workspaces with a store call running or waiting, by workspace id.
 *
 * A `Map` that empties gives its table back, and the next insert allocates a new one: when a
 * store answers at once, every write adds a lane and removes it again, and paid that (about a
 * tenth of a `flushAll`). One entry under `''`, which no workspace has as its id, keeps the map
 * from emptying; it holds no lane, so `get('')` answers `undefined` as for any idle workspace.
 */
const NO_WORKSPACE = '';

export class LaneTable<L> {
  readonly #byId = new Map<string, L | undefined>([[NO_WORKSPACE, undefined]]);

  get size(): number {
    return this.#byId.size - 1;
  }

  get(workspaceId: string): L | undefined {
    return this.#byId.get(workspaceId);
  }

  has(workspaceId: string): boolean {
    return workspaceId !== NO_WORKSPACE && this.#byId.has(workspaceId);
  }

  set(workspaceId: string, lane: L): void {
    this.#byId.set(workspaceId, lane);
  }

  delete(workspaceId: string): void {
    if (workspaceId !== NO_WORKSPACE) this.#byId.delete(workspaceId);
  }

  /** The lanes, oldest first, as a new array: callers may add and remove lanes meanwhile. */
  list(): L[] {
    const lanes: L[] = [];
    for (const lane of this.#byId.values()) if (lane !== undefined) lanes.push(lane);
    return lanes;
  }
}
