import { assertKnownKeys, assertWorkspaceId, expected, numberOption } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { throwIfAborted } from '../core/store-call.js';
import type {
  Fields,
  Logger,
  Patch,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreCallOptions,
  StoreErrorHandler,
  SubscribeOptions,
  UpsertItem,
  UpsertOutcome,
} from '../core/types.js';
import { encodeField } from './json-values.js';
import { type RedisClient, type RedisSubscriber, scriptRunner } from './redis-client.js';
import { decodeChange, decodeEntry } from './redis-codec.js';
import { RedisFeed, type ShardEntries } from './redis-feed.js';
import {
  claimPrefixes,
  hashTag,
  idOfTag,
  matchPrefix,
  shardOf,
  shardTags,
  slotOf,
  storeNames,
} from './redis-names.js';
import {
  fromNodeRedis,
  isNodeRedis,
  type NodeRedisClient,
  type NodeRedisCluster,
} from './redis-node-client.js';
import { RedisRecovery } from './redis-recovery.js';
import { FEED_END, FEED_READ, REMOVE, UPSERT } from './redis-scripts.js';
import { storeErrorHandler } from './report.js';
import { sinceOption } from './subscribe-options.js';

export type {
  RedisClient,
  RedisPipeline,
  RedisScanner,
  RedisSubscriber,
} from './redis-client.js';
export { redisAclRules } from './redis-names.js';
export type {
  NodeRedisClient,
  NodeRedisCluster,
  NodeRedisSubscriber,
} from './redis-node-client.js';

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
   * The pub/sub channel of the feed's wake-ups (each write publishes its feed shard's number).
   * @default `${prefix}changes`
   */
  channel?: string;
  /**
   * How many feed shards the change feed has: one Redis Stream each, in a slot of its own, so
   * that a workspace's keys and its feed entries share a slot of a cluster. Every replica of
   * a store must use the same number: it decides where each workspace's keys are.
   * @default 16
   */
  feedShards?: number;
  /**
   * About how many recent changes the feed keeps, shared among its shards (each is trimmed
   * with `MAXLEN ~`, so it may keep a few hundred more). A subscriber further behind starts
   * with a `reset`.
   * @default 10000
   */
  feedLength?: number;
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
   * This replica's name in the registry of replicas, for crash recovery: unique per process.
   * @default a random id with the process id
   */
  replicaId?: string;
  /**
   * How often a replica whose coalescer marks pending patches renews its heartbeat.
   * @default 2000
   */
  heartbeatMs?: number;
  /**
   * A replica whose heartbeat is this much overdue counts as gone: survivors claim its marks.
   * @default 10000
   */
  replicaTimeoutMs?: number;
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
  /**
   * Several upserts in one round trip per node of a cluster (one in all on one Redis):
   * pipelined scripts, each atomic for its workspace, one outcome per item.
   */
  upsertMany(items: readonly UpsertItem<F>[]): Promise<UpsertOutcome[]>;
  getByWorkspaceId(
    workspaceId: string,
    call?: StoreCallOptions,
  ): Promise<SnapshotEntry<F> | undefined>;
  remove(workspaceId: string, timestamp?: number, call?: StoreCallOptions): Promise<void>;
  /** Every entry (SCAN, not KEYS). */
  getAll(): Promise<SnapshotEntry<F>[]>;
  /**
   * Calls `listener` on every change made by any replica, in the order each workspace's
   * changes were applied; returns the function that unsubscribes it, whose `ready` settles
   * once the feed knows where the subscription starts: after `since`, or at the feed's end.
   * A subscription whose connection drops resumes from where it was by itself; it sends a
   * `reset` only when the changes it missed are no longer kept.
   */
  subscribe(
    listener: SnapshotListener<F>,
    options?: SubscribeOptions,
  ): (() => void) & { ready: Promise<void> };
  /** The feed's position now (its end): a subscriber with it as `since` misses nothing after it. */
  position(): Promise<string>;
  /**
   * Marks workspaces whose patches this replica's coalescer holds (the coalescer calls it);
   * the write that lands a patch clears its mark. Starts this replica's heartbeat.
   */
  markPending(workspaceIds: readonly string[]): Promise<void>;
  /** Clears this replica's marks of workspaces whose patches will not be written. */
  unmarkPending(workspaceIds: readonly string[]): Promise<void>;
  /**
   * The workspaces marked by replicas whose heartbeat expired, each claimed for this replica
   * (exactly one survivor gets it): re-read them, and write or unmark them.
   */
  claimOrphans(): Promise<string[]>;
  /** This replica's id in the registry. */
  readonly replicaId: string;
  /** Closes the change-feed connection the store opened; the client stays the caller's. */
  close(): Promise<void>;
}

/** Every key `RedisStoreOptions` has: any other is a misspelling. */
const REDIS_STORE_OPTIONS = [
  'prefix',
  'tombstonePrefix',
  'tombstoneTtlMs',
  'channel',
  'feedShards',
  'feedLength',
  'replicaId',
  'heartbeatMs',
  'replicaTimeoutMs',
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
  given: RedisClient | NodeRedisClient | NodeRedisCluster,
  options: RedisStoreOptions = {},
): RedisSnapshotStore<F> {
  const client = isNodeRedis(given) ? fromNodeRedis(given) : given;
  if (client === null || typeof client !== 'object' || typeof client.evalsha !== 'function') {
    throw new TypeError(
      expected('client', 'an ioredis Redis or Cluster, or a node-redis client or cluster', client),
    );
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
  const feedShards = numberOption('feedShards', options.feedShards, 16, 'count');
  if (feedShards > 1024) {
    throw new RangeError(expected('feedShards', 'a whole number from 1 to 1024', feedShards));
  }
  const feedLength = numberOption('feedLength', options.feedLength, 10_000, 'count');
  const shardLength = String(Math.ceil(feedLength / feedShards));
  const report = storeErrorHandler(options.onError, options.logger);
  const replicaId = options.replicaId ?? randomReplicaId();
  if (typeof replicaId !== 'string' || !/^[^,\s]+$/.test(replicaId)) {
    throw new TypeError(
      expected('replicaId', 'a non-empty string without commas or spaces', replicaId),
    );
  }
  const heartbeatMs = numberOption('heartbeatMs', options.heartbeatMs, 2000, 'count');
  const replicaTimeoutMs = numberOption(
    'replicaTimeoutMs',
    options.replicaTimeoutMs,
    10_000,
    'count',
  );
  if (replicaTimeoutMs <= heartbeatMs) {
    throw new RangeError(
      expected('replicaTimeoutMs', `more than heartbeatMs (${heartbeatMs})`, replicaTimeoutMs),
    );
  }
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
  // A workspace's keys carry its feed shard's hash tag, then its id: its hash, its tombstone
  // and its shard's stream (the shard's key with no id) share a slot of a cluster, so each
  // script touches one slot.
  const tags = shardTags(feedShards);
  const shardKey = (shard: number): string => `${prefix}{${tags[shard]}}`;
  const keysOf = (workspaceId: string) => {
    const shard = shardOf(workspaceId, feedShards);
    // The feed carries the escaped id, which UTF-8 carries exactly whatever the id (hashTag).
    const escaped = hashTag(workspaceId);
    const tag = `{${tags[shard]}}${escaped}`;
    return { shard, escaped, hash: `${prefix}${tag}`, tombstone: `${tombstonePrefix}${tag}` };
  };
  const workspaceOf = (key: string): string => idOfTag(key.slice(key.indexOf('}') + 1));
  const shardSlots = tags.map((tag) => slotOf(tag as string));
  /** The master that holds a shard's slot, by the client's slot map (the shard if unknown). */
  const nodeOf = (shard: number): string =>
    client.slots?.[shardSlots[shard] as number]?.[0] ?? `shard ${shard}`;
  const recovery = new RedisRecovery({
    replicaId,
    heartbeatMs,
    replicaTimeoutMs,
    registryKey: `${prefix}{replicas}`,
    shards: feedShards,
    locate(workspaceId) {
      const { shard, hash, escaped } = keysOf(workspaceId);
      return { shard, hash, tag: escaped };
    },
    hashBase: (shard) => shardKey(shard),
    // `{marks}` cannot follow a shard's tag in a tombstone's key: ids never hold braces there.
    markedBase: (shard) => `${tombstonePrefix}{${tags[shard]}}{marks}`,
    idOfTag,
    run: (script, keysAndArgs, keys) => run(script, keysAndArgs, keys),
    report,
  });
  const isCluster = typeof client.nodes === 'function';

  const { run, runMany, read, refusal } = scriptRunner(client, {
    waitCount,
    waitTimeoutMs,
    channel,
  });
  // Last of the checks: a store refused at creation claims nothing.
  const releasePrefixes = claimPrefixes(prefix, tombstonePrefix);

  /** An upsert's keys and arguments, every value encoded: a refused one throws, sending nothing. */
  const upsertArgs = (
    keys: ReturnType<typeof keysOf>,
    fields: Patch<F>,
    source: string,
    timestamp: number | undefined,
  ): string[] => {
    const keysAndArgs = [
      keys.hash,
      keys.tombstone,
      shardKey(keys.shard),
      keys.escaped,
      source,
      timestamp === undefined ? '' : String(timestamp),
      String(Date.now()),
      channel,
      String(keys.shard),
      shardLength,
      replicaId,
    ];
    for (const [name, value] of Object.entries(fields as Record<string, unknown>)) {
      if (value !== undefined) keysAndArgs.push(name, encodeField(name, value));
    }
    return keysAndArgs;
  };

  const feed = new RedisFeed<F>({
    shards: feedShards,
    report,
    async read(shard, cursor, count) {
      const key = shardKey(shard);
      const [kept, entries] = (await run(FEED_READ, [key, cursor, String(count)])) as [
        number,
        Array<[string, string[]]>?,
      ];
      if (kept !== 1) return undefined;
      const found: NonNullable<ShardEntries> = [];
      for (const [id, pairs] of entries ?? []) found.push([id, pairs[1] ?? '']);
      return found;
    },
    async end(shard) {
      return String(await run(FEED_END, [shardKey(shard)]));
    },
    decode: (message, id) => decodeChange<F>(message, id, report),
    connect(onWake, onReconnect) {
      // Subscriptions wait for the connection, and ioredis renews them after a reconnect.
      const feedOptions = { enableOfflineQueue: true };
      const duplicate = client.duplicate as (...args: unknown[]) => RedisSubscriber;
      const connection = isCluster
        ? duplicate.call(client, [], feedOptions)
        : duplicate.call(client, feedOptions);
      // Handled here: ioredis would otherwise print every reconnect's error as unhandled.
      connection.on('error', (error) => report(error, { operation: 'connection' }));
      connection.on('message', (from, message) => {
        if (from === channel) onWake(message);
      });
      let connected = false;
      connection.on('ready', () => {
        // The first `ready` is the start; each later one follows a reconnect.
        if (connected) onReconnect();
        connected = true;
      });
      return connection;
    },
    async listen(connection) {
      try {
        await connection.subscribe(channel);
      } catch (error) {
        const refused = refusal(error, 'subscribe', []);
        report(refused, { operation: 'connection' });
        throw refused;
      }
    },
    permanent: (error) =>
      ['EC_ACL_REFUSED', 'EC_SCRIPT_ERROR'].includes(String((error as { code?: unknown })?.code)),
  });

  return {
    async upsert(workspaceId, fields, source, timestamp, call) {
      // A command sent cannot be recalled: only a call aborted before it is sent is stopped.
      assertWorkspaceId(workspaceId);
      throwIfAborted(call);
      await run(UPSERT, upsertArgs(keysOf(workspaceId), fields, source, timestamp));
    },

    async upsertMany(items) {
      const outcomes: UpsertOutcome[] = new Array(items.length);
      // Each item checked and encoded first: one refused, or aborted, fails alone.
      const byGroup = new Map<string, { at: number[]; lists: string[][] }>();
      items.forEach(({ workspaceId, fields, source, timestamp, call }, at) => {
        try {
          assertWorkspaceId(workspaceId);
          throwIfAborted(call);
          const keys = keysOf(workspaceId);
          const args = upsertArgs(keys, fields, source, timestamp);
          // One pipeline per node of a cluster (by the slot map as the client knows it; a
          // stale one fails the items it misplaced, which are retried); one in all on one Redis.
          const group = isCluster ? nodeOf(keys.shard) : '';
          let pipelined = byGroup.get(group);
          if (pipelined === undefined) {
            pipelined = { at: [], lists: [] };
            byGroup.set(group, pipelined);
          }
          pipelined.at.push(at);
          pipelined.lists.push(args);
        } catch (reason) {
          outcomes[at] = { status: 'rejected', reason };
        }
      });
      await Promise.all(
        [...byGroup.values()].map(async ({ at, lists }) => {
          try {
            // Waiting for replicas pairs each script with its WAIT: those go one by one.
            const results =
              waitCount > 0 || typeof client.pipeline !== 'function'
                ? await Promise.all(
                    lists.map((args) =>
                      run(UPSERT, args).then(
                        (value) => ({ value }),
                        (error: unknown) => ({ error }),
                      ),
                    ),
                  )
                : await runMany(UPSERT, lists);
            results.forEach((result, k) => {
              outcomes[at[k] as number] =
                'error' in result
                  ? { status: 'rejected', reason: result.error }
                  : { status: 'fulfilled' };
            });
          } catch (reason) {
            for (const index of at) outcomes[index] = { status: 'rejected', reason };
          }
        }),
      );
      return outcomes;
    },

    async getByWorkspaceId(workspaceId, call) {
      assertWorkspaceId(workspaceId);
      throwIfAborted(call);
      const key = keysOf(workspaceId).hash;
      const hash = await read('getByWorkspaceId', [key], () => client.hgetall(key));
      return decodeEntry<F>(workspaceId, hash, report);
    },

    async remove(workspaceId, timestamp, call) {
      assertWorkspaceId(workspaceId);
      throwIfAborted(call);
      const keys = keysOf(workspaceId);
      await run(REMOVE, [
        keys.hash,
        keys.tombstone,
        shardKey(keys.shard),
        keys.escaped,
        timestamp === undefined ? '' : String(timestamp),
        String(Date.now()),
        String(tombstoneTtlMs),
        channel,
        String(keys.shard),
        shardLength,
        replicaId,
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

    subscribe(listener, subscribeOptions = {}) {
      if (typeof listener !== 'function') {
        throw new TypeError(expected('listener', 'a function', listener));
      }
      const { ready, remove } = feed.add(listener, sinceOption(subscribeOptions));
      return Object.assign(remove, { ready });
    },

    position: () => feed.position(),

    replicaId,

    async markPending(workspaceIds) {
      await recovery.mark(checkIds(workspaceIds));
    },

    async unmarkPending(workspaceIds) {
      await recovery.unmark(checkIds(workspaceIds));
    },

    claimOrphans: () => recovery.claimOrphans(),

    async close() {
      releasePrefixes();
      await Promise.all([feed.close(), recovery.close()]);
    },
  };
}

/** A replica id unique enough among a deployment's processes: random, with the process id. */
function randomReplicaId(): string {
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  return `${Math.floor(Math.random() * 2 ** 40).toString(36)}-${pid}`;
}

/** Workspace ids, each a non-empty string. */
function checkIds(workspaceIds: readonly string[]): readonly string[] {
  if (!Array.isArray(workspaceIds)) {
    throw new TypeError(expected('workspaceIds', 'an array of workspace ids', workspaceIds));
  }
  for (const id of workspaceIds) assertWorkspaceId(id);
  return workspaceIds;
}
