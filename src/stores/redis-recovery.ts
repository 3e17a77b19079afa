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
  SETTLE,
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
  /** A shard's index of marks, and the start of its hashes' keys. */
  indexKey(shard: number): string;
  hashBase(shard: number): string;
  idOfTag(tag: string): string;
  run(script: RedisScript, keysAndArgs: string[], keys?: number): Promise<unknown>;
  readonly report: StoreErrorHandler;
}

/** Index entries of landed writes are forgotten in batches, this often. */
const SETTLE_MS = 1000;

export class RedisRecovery {
  readonly #source: RecoverySource;
  /** Workspaces this replica marked, whose writes have not landed since. */
  readonly #marked = new Set<string>();
  /** Workspaces whose writes landed, whose index entries are to be forgotten. */
  readonly #landed = new Set<string>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #beating: Promise<unknown> | undefined;
  #failing = false;
  #closed = false;

  constructor(source: RecoverySource) {
    this.#source = source;
  }

  /**
   * Marks the workspaces, after this replica's first heartbeat (a survivor takes a mark of a
   * replica it does not know for one still starting). Commands are sent before this returns,
   * so that a write sent after them comes after them.
   */
  mark(workspaceIds: readonly string[]): Promise<unknown> {
    const beating = this.#startHeartbeat();
    for (const id of workspaceIds) {
      this.#marked.add(id);
      this.#landed.delete(id);
    }
    return Promise.all([beating, ...this.#perShard(workspaceIds, MARK, [])]);
  }

  unmark(workspaceIds: readonly string[]): Promise<unknown> {
    for (const id of workspaceIds) this.#marked.delete(id);
    return Promise.all(this.#perShard(workspaceIds, SETTLE, ['unmark']));
  }

  /** A write or removal of the workspace landed: its mark is gone; so goes its index entry. */
  landed(workspaceId: string): void {
    if (!this.#marked.delete(workspaceId)) return;
    this.#landed.add(workspaceId);
    if (this.#settleTimer !== undefined || this.#closed) return;
    this.#settleTimer = setTimeout(() => {
      this.#settleTimer = undefined;
      const ids = [...this.#landed];
      this.#landed.clear();
      Promise.all(this.#perShard(ids, SETTLE, ['landed'])).then(
        () => {
          this.#failing = false;
        },
        (error: unknown) => this.#failed(error),
      );
    }, SETTLE_MS);
    unref(this.#settleTimer);
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
      claims.push(
        source.run(CLAIM, [
          source.indexKey(shard),
          source.replicaId,
          source.hashBase(shard),
          ...expired,
        ]),
      );
    }
    const claimed = ((await Promise.all(claims)) as string[][]).flat().map(source.idOfTag);
    for (const id of claimed) this.#marked.add(id);
    await source.run(FORGET, [source.registryKey, ...expired]);
    return claimed;
  }

  /** Stops the heartbeat and leaves the registry: what this replica still marks is orphaned. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#settleTimer);
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
    unref(this.#heartbeat);
    // A first heartbeat that failed is tried again with the next mark.
    this.#beating.catch(() => {
      this.#beating = undefined;
      clearInterval(this.#heartbeat);
    });
    return this.#beating;
  }

  /** One script per feed shard for the workspaces in it, sent now. */
  #perShard(workspaceIds: readonly string[], script: RedisScript, args: string[]) {
    const source = this.#source;
    const byShard = new Map<number, { keys: string[]; tags: string[] }>();
    for (const id of workspaceIds) {
      const { shard, hash, tag } = source.locate(id);
      let group = byShard.get(shard);
      if (group === undefined) {
        group = { keys: [source.indexKey(shard)], tags: [] };
        byShard.set(shard, group);
      }
      group.keys.push(hash);
      group.tags.push(tag);
    }
    const sent: Promise<unknown>[] = [];
    for (const { keys, tags } of byShard.values()) {
      sent.push(source.run(script, [...keys, source.replicaId, ...args, ...tags], keys.length));
    }
    return sent;
  }

  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#source.report(error, { operation: 'connection' });
  }
}

const unref = (timer: unknown): void => (timer as { unref?(): void }).unref?.();
