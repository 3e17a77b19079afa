/**
 * The Redis store's part in crash recovery. Each store is a replica with an id and a
 * heartbeat in a registry. It marks the workspaces whose patches its coalescer holds (the
 * write that lands a patch clears its mark, in the write's own script), and a survivor
 * claims the marks of replicas whose heartbeat expired, to re-read those workspaces.
 */
import type { StoreErrorHandler } from '../core/types.js';
import {
  CLAIM,
  EXPIRED,
  FORGET,
  HEARTBEAT,
  MARK,
  type RedisScript,
  UNMARK,
} from './redis-scripts.js';

/** What recovery needs of its store: names, and a way to run scripts. */
export interface RecoverySource {
  readonly replicaId: string;
  readonly heartbeatMs: number;
  readonly replicaTimeoutMs: number;
  /** The registry of replicas (a sorted set). */
  readonly registryKey: string;
  readonly shards: number;
  /** A workspace's shard, its hash's key and its escaped id. */
  locate(workspaceId: string): { shard: number; hash: string; tag: string };
  /** The start of a shard's hashes' keys, and of its sets of marked workspaces. */
  hashBase(shard: number): string;
  markedBase(shard: number): string;
  idOfTag(tag: string): string;
  run(script: RedisScript, keysAndArgs: string[], keys?: number): Promise<unknown>;
  readonly report: StoreErrorHandler;
}

export class RedisRecovery {
  readonly #source: RecoverySource;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #beating: Promise<unknown> | undefined;
  #failing = false;

  constructor(source: RecoverySource) {
    this.#source = source;
  }

  /**
   * Marks the workspaces, this replica's heartbeat first (a survivor leaves alone the marks
   * of a replica it does not know, one still starting). Every command is sent before this
   * returns, so that a write sent after them comes after them.
   */
  mark(workspaceIds: readonly string[]): Promise<unknown> {
    const source = this.#source;
    const beating = this.#startHeartbeat();
    const sent = [beating];
    for (const [shard, { hashes, tags }] of this.#byShard(workspaceIds)) {
      const marked = `${source.markedBase(shard)}${source.replicaId}`;
      const keys = [marked, ...hashes];
      sent.push(source.run(MARK, [...keys, source.replicaId, ...tags], keys.length));
    }
    return Promise.all(sent);
  }

  /** Takes this replica's marks out of workspaces whose patches will not be written. */
  unmark(workspaceIds: readonly string[]): Promise<unknown> {
    const source = this.#source;
    const sent: Promise<unknown>[] = [];
    for (const { hashes } of this.#byShard(workspaceIds).values()) {
      sent.push(source.run(UNMARK, [...hashes, source.replicaId], hashes.length));
    }
    return Promise.all(sent);
  }

  /**
   * The workspaces marked by replicas whose heartbeat expired, claimed as this replica's:
   * exactly one survivor gets each. Their replicas are then forgotten.
   */
  async claimOrphans(): Promise<string[]> {
    const source = this.#source;
    await this.#startHeartbeat();
    const expired = (await source.run(EXPIRED, [source.registryKey, source.replicaId])) as string[];
    if (expired.length === 0) return [];
    const claims: Promise<unknown>[] = [];
    for (let shard = 0; shard < source.shards; shard++) {
      const markedBase = source.markedBase(shard);
      claims.push(
        source.run(CLAIM, [
          `${markedBase}${source.replicaId}`,
          source.hashBase(shard),
          markedBase,
          source.replicaId,
          ...expired,
        ]),
      );
    }
    const claimed = ((await Promise.all(claims)) as string[][]).flat().map(source.idOfTag);
    await source.run(FORGET, [source.registryKey, ...expired]);
    return claimed;
  }

  /** Stops the heartbeat and leaves the registry: what this replica still marks is orphaned. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    if (this.#beating === undefined) return;
    const source = this.#source;
    // Expired at once: a survivor may claim its marks (patches given up) without waiting.
    await source
      .run(HEARTBEAT, [source.registryKey, source.replicaId, '-1'])
      .catch((error: unknown) => this.#failed(error));
  }

  #startHeartbeat(): Promise<unknown> {
    if (this.#beating !== undefined) return this.#beating;
    const source = this.#source;
    const beat = () =>
      source.run(HEARTBEAT, [
        source.registryKey,
        source.replicaId,
        String(source.replicaTimeoutMs),
      ]);
    this.#beating = beat();
    this.#heartbeat = setInterval(() => {
      beat().then(
        () => {
          this.#failing = false;
        },
        (error: unknown) => this.#failed(error),
      );
    }, source.heartbeatMs);
    (this.#heartbeat as { unref?(): void }).unref?.();
    // A first heartbeat that failed is tried again with the next mark.
    this.#beating.catch(() => {
      this.#beating = undefined;
      clearInterval(this.#heartbeat);
    });
    return this.#beating;
  }

  /** The workspaces by feed shard: their hashes' keys and escaped ids. */
  #byShard(workspaceIds: readonly string[]) {
    const byShard = new Map<number, { hashes: string[]; tags: string[] }>();
    for (const id of workspaceIds) {
      const { shard, hash, tag } = this.#source.locate(id);
      let group = byShard.get(shard);
      if (group === undefined) {
        group = { hashes: [], tags: [] };
        byShard.set(shard, group);
      }
      group.hashes.push(hash);
      group.tags.push(tag);
    }
    return byShard;
  }

  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#source.report(error, { operation: 'connection' });
  }
}
