import { expected } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { numberOption } from '../core/options.js';
import type {
  Fields,
  Patch,
  SnapshotChange,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreErrorHandler,
} from '../core/types.js';
import { decodeChange, decodeEntry, encodeField } from './redis-codec.js';
import { hashTag, idOfTag, matchPrefix, storeNames } from './redis-names.js';
import { isNoScript, REMOVE, sha1, UPSERT } from './redis-scripts.js';
import { notifyAll, storeErrorHandler } from './report.js';

export { redisAclRules } from './redis-names.js';

/** What a store scans for `getAll`: the client, or each master of a cluster. */
export interface RedisScanner {
  scan(
    cursor: string,
    patternToken: 'MATCH',
    pattern: string,
    countToken: 'COUNT',
    count: number,
    typeToken: 'TYPE',
    type: string,
  ): Promise<[cursor: string, keys: string[]]>;
}

/** The part of an `ioredis` client the store uses: a `Redis` or a `Cluster` fits. */
export interface RedisClient extends RedisScanner {
  /** Keys and arguments come as one array (ioredis flattens it): no spread of large patches. */
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>;
  /** ioredis's connection state: the store fails fast unless it is `ready`. */
  readonly status?: string;
  hgetall(key: string): Promise<Record<string, string>>;
  /**
   * A new connection with the same options, for the change feed: `Redis#duplicate(options)`
   * or `Cluster#duplicate(startupNodes, options)`.
   */
  duplicate(...args: never[]): RedisSubscriber;
  /** A cluster's nodes: `getAll` scans every master. */
  nodes?(role: 'master'): RedisScanner[];
  /** For `waitForReplicas`: the script and its WAIT go to one node together. */
  pipeline?(): RedisPipeline;
  /** A cluster's map of slots, refreshed when a pipeline meets a moved slot. */
  refreshSlotsCache?(): void;
}

/** The part of an `ioredis` connection the change feed uses. */
export interface RedisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  quit(): Promise<unknown>;
}

export interface RedisStoreOptions {
  /**
   * Prefix of the workspace hashes.
   * @default 'snapshot:'
   */
  prefix?: string;
  /**
   * Prefix of the removal tombstones (strings, kept apart from the hashes).
   * @default `${prefix without its trailing colon}-removed:`
   */
  tombstonePrefix?: string;
  /**
   * How long a removal's tombstone keeps slower writes from resurrecting the workspace.
   * @default 600000 (10 minutes)
   */
  tombstoneTtlMs?: number;
  /**
   * The pub/sub channel of the change feed.
   * @default `${prefix}changes`
   */
  channel?: string;
  /**
   * Receives what the store cannot throw at anyone: a stored value or a change-feed message
   * that cannot be decoded, a change listener that threw, an error of the change-feed
   * connection (it reconnects by itself).
   * @default console.error
   */
  onError?: StoreErrorHandler;
  /**
   * Durability across a failover: a write counts as done only once this many replicas of its
   * master acknowledged it (`WAIT`, pipelined with the script to the same node); fewer within
   * `timeoutMs` is a failure the coalescer retries. Without it, a write acknowledged by a master
   * that dies before replicating it is lost. Off (`count: 0`) by default.
   * @default { count: 0, timeoutMs: 1000 }
   */
  waitForReplicas?: { count?: number; timeoutMs?: number };
}

/** The part of an ioredis pipeline the store uses to wait for replicas. */
export interface RedisPipeline {
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): unknown;
  eval(script: string, numKeys: number, keysAndArgs: string[]): unknown;
  call(command: string, ...args: string[]): unknown;
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>;
}

/** The store contract in Redis, with reading, a change feed shared by every replica, and close. */
export interface RedisSnapshotStore<F extends object = Fields> extends SnapshotStore<F> {
  upsert(workspaceId: string, fields: Patch<F>, source: string, timestamp?: number): Promise<void>;
  getByWorkspaceId(workspaceId: string): Promise<SnapshotEntry<F> | undefined>;
  remove(workspaceId: string, timestamp?: number): Promise<void>;
  /** Every entry (SCAN, not KEYS). */
  getAll(): Promise<SnapshotEntry<F>[]>;
  /**
   * Calls `listener` on every change made by any replica; returns the function that
   * unsubscribes it, whose `ready` settles once Redis confirmed the subscription.
   */
  subscribe(listener: SnapshotListener<F>): (() => void) & { ready: Promise<void> };
  /** Closes the change-feed connection the store opened; the client stays the caller's. */
  close(): Promise<void>;
}

/**
 * A snapshot store in Redis, so that several server replicas share one snapshot and one
 * change feed. Same semantics as the memory store, each call one atomic Lua script.
 * Redis errors surface as rejected Promises (the coalescer retries and reports them).
 *
 * @example
 * import Redis from 'ioredis';
 * import { createRedisSnapshotStore } from 'event-coalescer/redis';
 * const store = createRedisSnapshotStore(new Redis(process.env.REDIS_URL));
 * configureEventCollector({ store, timestamps: true, sources });
 */
export function createRedisSnapshotStore<F extends object = Fields>(
  client: RedisClient,
  options: RedisStoreOptions = {},
): RedisSnapshotStore<F> {
  if (client === null || typeof client !== 'object' || typeof client.evalsha !== 'function') {
    throw new TypeError(expected('client', 'an ioredis client', client));
  }
  if (!isPlainObject(options)) throw new TypeError(expected('options', 'an object', options));
  const { prefix, tombstonePrefix, channel } = storeNames(options);
  // Redis's PX takes a whole number of milliseconds from 1 and up.
  const tombstoneTtlMs = numberOption('tombstoneTtlMs', options.tombstoneTtlMs, 600_000, 'count');
  const report = storeErrorHandler(options.onError);
  const waitFor = options.waitForReplicas;
  if (waitFor !== undefined && !isPlainObject(waitFor)) {
    throw new TypeError(expected('waitForReplicas', 'an object', waitFor));
  }
  const waitCount =
    waitFor?.count === 0 ? 0 : numberOption('waitForReplicas.count', waitFor?.count, 0, 'count');
  const waitTimeoutMs = numberOption(
    'waitForReplicas.timeoutMs',
    waitFor?.timeoutMs,
    1000,
    'count',
  );
  if (waitCount > 0 && typeof client.pipeline !== 'function') {
    throw new TypeError(expected('client', 'an ioredis client with pipeline()', client));
  }
  // The workspace id in braces is the hash tag: both keys of a workspace land in one slot of
  // a cluster, so each script touches one slot (see `hashTag`).
  const hashKey = (workspaceId: string): string => `${prefix}{${hashTag(workspaceId)}}`;
  const tombstoneKey = (workspaceId: string): string =>
    `${tombstonePrefix}{${hashTag(workspaceId)}}`;
  const workspaceOf = (key: string): string => idOfTag(key.slice(prefix.length + 1, -1));
  const isCluster = typeof client.nodes === 'function';
  const upsertSha = sha1(UPSERT);
  const removeSha = sha1(REMOVE);
  const listeners = new Set<SnapshotListener<F>>();
  let subscriber: RedisSubscriber | undefined;
  let subscribed: Promise<void> | undefined;

  /**
   * EVALSHA, loading the script with EVAL the first time Redis does not know it. While the
   * client is not connected it fails at once instead of waiting in ioredis's offline queue:
   * a write the coalescer gave up must not land later, so its retry policy owns every outcome.
   */
  const run = async (script: string, sha: string, keysAndArgs: string[]) => {
    const status = client.status;
    if (status !== undefined && status !== 'ready') {
      throw new Error(`event-coalescer: the Redis client is not connected (status: ${status})`);
    }
    const operation = script === UPSERT ? 'upsert' : 'remove';
    try {
      if (waitCount > 0) return await runAndWait(script, sha, keysAndArgs);
      try {
        return await client.evalsha(sha, 2, keysAndArgs);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return await client.eval(script, 2, keysAndArgs);
      }
    } catch (error) {
      throw refusal(error, operation, keysAndArgs.slice(0, 2));
    }
  };

  /**
   * An ACL refusal names neither the command nor the key: say which, so the user can mend
   * the rule (see `redisAclRules`). Other errors pass as they are.
   */
  const refusal = (error: unknown, operation: string, keys: string[]): unknown => {
    const message = String((error as Error | undefined)?.message);
    if (!/NOPERM|no permissions|can't (publish|access)/i.test(message)) return error;
    return new Error(
      `event-coalescer: Redis refused ${operation} for this user (keys ${keys.join(', ')}, channel ${channel}): ${message}`,
      { cause: error },
    );
  };

  /** The script and a WAIT for replicas, pipelined to the node of the workspace's slot. */
  const runAndWait = async (script: string, sha: string, keysAndArgs: string[]) => {
    const send = async (loaded: boolean) => {
      const pipeline = (client.pipeline as () => RedisPipeline).call(client);
      if (loaded) pipeline.evalsha(sha, 2, keysAndArgs);
      else pipeline.eval(script, 2, keysAndArgs);
      pipeline.call('WAIT', String(waitCount), String(waitTimeoutMs));
      return (await pipeline.exec()) ?? [];
    };
    let results = await send(true);
    if (isNoScript(results[0]?.[0])) results = await send(false);
    const [scriptError, result] = results[0] ?? [new Error('no reply'), undefined];
    if (scriptError) {
      // A pipeline does not follow a moved slot by itself: learn the new map for the retry.
      if (/^(MOVED|ASK) /.test(scriptError.message)) client.refreshSlotsCache?.();
      throw scriptError;
    }
    const [waitError, acknowledged] = results[1] ?? [new Error('no reply to WAIT'), 0];
    if (waitError) throw waitError;
    if (Number(acknowledged) < waitCount) {
      throw new Error(
        `event-coalescer: ${acknowledged} of ${waitCount} replicas acknowledged the write within ${waitTimeoutMs} ms`,
      );
    }
    return result;
  };

  const openFeed = (): Promise<void> => {
    if (subscribed !== undefined) return subscribed;
    // Subscriptions wait for the connection, and ioredis renews them after a reconnect.
    const feedOptions = { enableOfflineQueue: true };
    const duplicate = client.duplicate as (...args: unknown[]) => RedisSubscriber;
    const connection = isCluster
      ? duplicate.call(client, [], feedOptions)
      : duplicate.call(client, feedOptions);
    subscriber = connection;
    // Handled here: ioredis would otherwise print every reconnect's error as unhandled.
    connection.on('error', (error) => report(error, { operation: 'connection' }));
    connection.on('message', (from, message) => {
      if (from !== channel) return;
      let change: SnapshotChange<F> | undefined;
      try {
        change = decodeChange<F>(message, report);
      } catch (error) {
        report(error, { operation: 'decode' });
        return;
      }
      if (change !== undefined) notifyAll(listeners, change, report);
    });
    subscribed = connection.subscribe(channel).then(
      () => undefined,
      (error: unknown) => {
        const refused = refusal(error, 'subscribe', []);
        report(refused, { operation: 'connection' });
        throw refused;
      },
    );
    return subscribed;
  };

  const closeFeed = async (): Promise<void> => {
    const connection = subscriber;
    subscriber = undefined;
    subscribed = undefined;
    await connection?.quit();
  };

  return {
    async upsert(workspaceId, fields, source, timestamp) {
      const keysAndArgs = [
        hashKey(workspaceId),
        tombstoneKey(workspaceId),
        workspaceId,
        source,
        timestamp === undefined ? '' : String(timestamp),
        String(Date.now()),
        channel,
      ];
      // Every value is encoded before anything is sent: a refused one writes nothing.
      for (const [name, value] of Object.entries(fields as Record<string, unknown>)) {
        if (value !== undefined) keysAndArgs.push(name, encodeField(name, value));
      }
      await run(UPSERT, upsertSha, keysAndArgs);
    },

    async getByWorkspaceId(workspaceId) {
      const key = hashKey(workspaceId);
      const hash = await client.hgetall(key).catch((error: unknown) => {
        throw refusal(error, 'getByWorkspaceId', [key]);
      });
      return decodeEntry<F>(workspaceId, hash, report);
    },

    async remove(workspaceId, timestamp) {
      await run(REMOVE, removeSha, [
        hashKey(workspaceId),
        tombstoneKey(workspaceId),
        workspaceId,
        timestamp === undefined ? '' : String(timestamp),
        String(Date.now()),
        String(tombstoneTtlMs),
        channel,
      ]);
    },

    async getAll() {
      const entries: SnapshotEntry<F>[] = [];
      // A cluster keeps each slot on one master: every master is scanned.
      const scanners = isCluster ? (client.nodes?.('master') ?? []) : [client];
      for (const scanner of scanners) {
        let cursor = '0';
        do {
          const [next, keys] = await scanner.scan(
            cursor,
            'MATCH',
            matchPrefix(prefix),
            'COUNT',
            200,
            'TYPE',
            'hash',
          );
          cursor = next;
          for (const key of keys) {
            const workspaceId = workspaceOf(key);
            const entry = decodeEntry<F>(workspaceId, await client.hgetall(key), report);
            if (entry !== undefined) entries.push(entry);
          }
        } while (cursor !== '0');
      }
      return entries;
    },

    subscribe(listener) {
      listeners.add(listener);
      const ready = openFeed();
      const unsubscribe = () => {
        listeners.delete(listener);
        if (listeners.size === 0) void closeFeed();
      };
      return Object.assign(unsubscribe, { ready });
    },

    async close() {
      listeners.clear();
      await closeFeed();
    },
  };
}
