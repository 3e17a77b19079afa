import { assertKnownKeys, expected, numberOption } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import type {
  Fields,
  Logger,
  Patch,
  SnapshotChange,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreCallOptions,
  StoreErrorHandler,
} from '../core/types.js';
import { type RedisClient, type RedisSubscriber, scriptRunner } from './redis-client.js';
import { decodeChange, decodeEntry, encodeField } from './redis-codec.js';
import { claimPrefixes, hashTag, idOfTag, matchPrefix, storeNames } from './redis-names.js';
import { REMOVE, sha1, UPSERT } from './redis-scripts.js';
import { notifyAll, storeErrorHandler } from './report.js';

export type {
  RedisClient,
  RedisPipeline,
  RedisScanner,
  RedisSubscriber,
} from './redis-client.js';
export { redisAclRules } from './redis-names.js';

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
   * @default reports to `logger.error`, else one `console.error` line
   */
  onError?: StoreErrorHandler;
  /** Where reports go without an `onError`: the host's logger (`pino`, `console`). */
  logger?: Partial<Logger>;
  /**
   * Durability across a failover: a write counts as done only once this many replicas of its
   * master acknowledged it (`WAIT`, pipelined with the script to the same node); fewer within
   * `timeoutMs` is a failure the coalescer retries. Without it, a write acknowledged by a master
   * that dies before replicating it is lost. Off (`count: 0`) by default.
   * @default { count: 0, timeoutMs: 1000 }
   */
  waitForReplicas?: { count?: number; timeoutMs?: number };
}

/** The store contract in Redis, with reading, a change feed shared by every replica, and close. */
export interface RedisSnapshotStore<F extends object = Fields> extends SnapshotStore<F> {
  /** A call whose signal is aborted before it is sent sends nothing; a sent one cannot be recalled. */
  upsert(
    workspaceId: string,
    fields: Patch<F>,
    source: string,
    timestamp?: number,
    call?: StoreCallOptions,
  ): Promise<void>;
  getByWorkspaceId(
    workspaceId: string,
    call?: StoreCallOptions,
  ): Promise<SnapshotEntry<F> | undefined>;
  remove(workspaceId: string, timestamp?: number, call?: StoreCallOptions): Promise<void>;
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

/** Every key `RedisStoreOptions` has: any other is a misspelling. */
const REDIS_STORE_OPTIONS = [
  'prefix',
  'tombstonePrefix',
  'tombstoneTtlMs',
  'channel',
  'onError',
  'logger',
  'waitForReplicas',
];

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
  assertKnownKeys('options', options, REDIS_STORE_OPTIONS);
  const { prefix, tombstonePrefix, channel } = storeNames(options);
  const tombstoneTtlMs: unknown = options.tombstoneTtlMs ?? 600_000;
  // PX takes a whole number of ms written as digits, which Redis adds to its clock: a safe
  // integer is the range that holds both.
  if (
    typeof tombstoneTtlMs !== 'number' ||
    !Number.isSafeInteger(tombstoneTtlMs) ||
    tombstoneTtlMs < 1
  ) {
    throw new RangeError(
      expected(
        'tombstoneTtlMs',
        `a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
        tombstoneTtlMs,
      ),
    );
  }
  const report = storeErrorHandler(options.onError, options.logger);
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

  const { run, read, refusal } = scriptRunner(client, { waitCount, waitTimeoutMs, channel });
  // Last of the checks: a store refused at creation claims nothing.
  const releasePrefixes = claimPrefixes(prefix, tombstonePrefix);

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
    async upsert(workspaceId, fields, source, timestamp, call) {
      // A command sent cannot be recalled: only a call aborted before it is sent is stopped.
      call?.signal.throwIfAborted();
      const keysAndArgs = [
        hashKey(workspaceId),
        tombstoneKey(workspaceId),
        // The feed carries the tag, which UTF-8 carries exactly whatever the id (see hashTag).
        hashTag(workspaceId),
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

    async getByWorkspaceId(workspaceId, call) {
      call?.signal.throwIfAborted();
      const key = hashKey(workspaceId);
      const hash = await read('getByWorkspaceId', [key], () => client.hgetall(key));
      return decodeEntry<F>(workspaceId, hash, report);
    },

    async remove(workspaceId, timestamp, call) {
      call?.signal.throwIfAborted();
      await run(REMOVE, removeSha, [
        hashKey(workspaceId),
        tombstoneKey(workspaceId),
        hashTag(workspaceId),
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
          const [next, keys] = await read('getAll', [], () =>
            scanner.scan(cursor, 'MATCH', matchPrefix(prefix), 'COUNT', 200, 'TYPE', 'hash'),
          );
          cursor = next;
          for (const key of keys) {
            const workspaceId = workspaceOf(key);
            const hash = await read('getAll', [key], () => client.hgetall(key));
            const entry = decodeEntry<F>(workspaceId, hash, report);
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
      releasePrefixes();
      await closeFeed();
    },
  };
}
