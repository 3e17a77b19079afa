import { createHash } from 'node:crypto';
import { describeValue, expected } from '../core/describe.js';
import { isPlainObject, setField } from '../core/merge.js';
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
import { notifyAll, storeErrorHandler } from './report.js';

/** The part of an `ioredis` client the store uses; an `ioredis` instance fits. */
export interface RedisClient {
  /** Keys and arguments come as one array (ioredis flattens it): no spread of large patches. */
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>;
  /** ioredis's connection state: the store fails fast unless it is `ready`. */
  readonly status?: string;
  hgetall(key: string): Promise<Record<string, string>>;
  scan(
    cursor: string,
    patternToken: 'MATCH',
    pattern: string,
    countToken: 'COUNT',
    count: number,
    typeToken: 'TYPE',
    type: string,
  ): Promise<[cursor: string, keys: string[]]>;
  /** A new connection with the same options, for the change feed. */
  duplicate(override?: { enableOfflineQueue?: boolean }): RedisSubscriber;
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

// Hash layout: `f:<field>` → JSON value, `t:<field>` → timestamp of its last write,
// plus `version`, `source` and `updatedAt`. One script per call: one round trip, atomic.
const UPSERT = `
local key, tomb = KEYS[1], KEYS[2]
local id, source, ts, now, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if ts ~= '' then
  local removedAt = redis.call('GET', tomb)
  if removedAt and tonumber(ts) <= tonumber(removedAt) then return 0 end
end
local existed = redis.call('EXISTS', key) == 1
local changed = {}
for i = 6, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  local newer = true
  if ts ~= '' then
    local previous = redis.call('HGET', key, 't:' .. name)
    if previous and tonumber(previous) >= tonumber(ts) then newer = false
    else redis.call('HSET', key, 't:' .. name, ts) end
  end
  if newer and redis.call('HGET', key, 'f:' .. name) ~= value then
    redis.call('HSET', key, 'f:' .. name, value)
    changed[#changed + 1] = name
  end
end
if existed and #changed == 0 then return 0 end
redis.call('HINCRBY', key, 'version', 1)
redis.call('HSET', key, 'source', source, 'updatedAt', ts ~= '' and ts or now)
redis.call('PUBLISH', channel, cjson.encode({'upsert', id, changed, redis.call('HGETALL', key)}))
return 1
`;

const REMOVE = `
local key, tomb = KEYS[1], KEYS[2]
local id, ts, now, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local removedAt = ts ~= '' and ts or now
local previous = redis.call('GET', tomb)
if not previous or tonumber(removedAt) > tonumber(previous) then
  redis.call('SET', tomb, removedAt, 'PX', ttl)
end
local entry = redis.call('HGETALL', key)
if #entry == 0 then return 0 end
redis.call('DEL', key)
redis.call('PUBLISH', channel, cjson.encode({'remove', id, entry}))
return 1
`;

const sha1 = (script: string): string => createHash('sha1').update(script).digest('hex');

/**
 * Builds an entry from a hash's record. A field that cannot be decoded is reported and
 * left out: one bad value must not make every read fail.
 */
function decodeEntry<F extends object>(
  workspaceId: string,
  hash: Record<string, string>,
  report: StoreErrorHandler,
): SnapshotEntry<F> | undefined {
  if (hash.version === undefined) return undefined;
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(hash)) {
    if (!name.startsWith('f:')) continue;
    const field = name.slice(2);
    try {
      setField(fields, field, JSON.parse(value));
    } catch (error) {
      report(error, { operation: 'decode', workspaceId, field });
    }
  }
  return {
    workspaceId,
    fields: fields as Partial<F>,
    version: Number(hash.version),
    source: hash.source ?? '',
    updatedAt: Number(hash.updatedAt),
  };
}

function pairs(flat: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (!Array.isArray(flat)) return record;
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = String(flat[i + 1]);
  return record;
}

/** Turns a change-feed message back into the memory store's change shape. */
function decodeChange<F extends object>(
  message: string,
  report: StoreErrorHandler,
): SnapshotChange<F> | undefined {
  const [type, workspaceId, third, fourth] = JSON.parse(message) as [
    string,
    string,
    unknown,
    unknown,
  ];
  if (type === 'upsert') {
    const entry = decodeEntry<F>(workspaceId, pairs(fourth), report);
    // cjson encodes an empty Lua table as {}, not [].
    const changed = Array.isArray(third) ? third.map(String) : [];
    return entry && { type, workspaceId, entry, changed };
  }
  if (type === 'remove') {
    const previous = decodeEntry<F>(workspaceId, pairs(third), report);
    return previous && { type, workspaceId, previous };
  }
  return undefined;
}

/** What JSON would silently turn into something else, described; `undefined` when faithful. */
function unfaithful(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? undefined : describeValue(value);
    case 'object': {
      if (value === null) return undefined;
      if (depth > 100) return 'an object nested more than 100 levels deep';
      // Dates and the like are stored as what their toJSON gives.
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const inner = value[i] === undefined ? 'undefined' : unfaithful(value[i], depth + 1);
          if (inner !== undefined) return `${inner} at [${i}]`;
        }
        return undefined;
      }
      for (const key of Object.keys(value)) {
        const inner = (value as Record<string, unknown>)[key];
        // JSON leaves out an undefined property, as a patch does: "not provided".
        if (inner === undefined) continue;
        const found = unfaithful(inner, depth + 1);
        if (found !== undefined) return `${found} at .${key}`;
      }
      return undefined;
    }
    default:
      return describeValue(value);
  }
}

/** A field's value as JSON, refused when JSON cannot carry it exactly. */
function encodeField(name: string, value: unknown): string {
  const problem = unfaithful(value, 0);
  if (problem === undefined) {
    try {
      return JSON.stringify(value);
    } catch (error) {
      throw new TypeError(`Field \`${name}\` cannot be stored as JSON: ${String(error)}`);
    }
  }
  throw new TypeError(
    `Expected field \`${name}\` to be a value JSON carries exactly, got ${problem}`,
  );
}

/** `prefix*` for SCAN MATCH, with the prefix's own glob characters escaped. */
const matchPrefix = (prefix: string): string => `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;

/** A string option, or `fallback` when undefined. */
function stringOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new TypeError(expected(name, 'a string', value));
  return value;
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
  const prefix = stringOption('prefix', options.prefix, 'snapshot:');
  const tombstonePrefix = stringOption(
    'tombstonePrefix',
    options.tombstonePrefix,
    `${prefix.replace(/:$/, '')}-removed:`,
  );
  // Redis's PX takes a whole number of milliseconds from 1 and up.
  const tombstoneTtlMs = numberOption('tombstoneTtlMs', options.tombstoneTtlMs, 600_000, 'count');
  const channel = stringOption('channel', options.channel, `${prefix}changes`);
  const report = storeErrorHandler(options.onError);
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
    try {
      return await client.evalsha(sha, 2, keysAndArgs);
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      return client.eval(script, 2, keysAndArgs);
    }
  };

  const openFeed = (): Promise<void> => {
    if (subscribed !== undefined) return subscribed;
    // Subscriptions wait for the connection, and ioredis renews them after a reconnect.
    const connection = client.duplicate({ enableOfflineQueue: true });
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
    subscribed = connection.subscribe(channel).then(() => undefined);
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
        prefix + workspaceId,
        tombstonePrefix + workspaceId,
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
      return decodeEntry<F>(workspaceId, await client.hgetall(prefix + workspaceId), report);
    },

    async remove(workspaceId, timestamp) {
      await run(REMOVE, removeSha, [
        prefix + workspaceId,
        tombstonePrefix + workspaceId,
        workspaceId,
        timestamp === undefined ? '' : String(timestamp),
        String(Date.now()),
        String(tombstoneTtlMs),
        channel,
      ]);
    },

    async getAll() {
      const entries: SnapshotEntry<F>[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(
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
          const entry = decodeEntry<F>(key.slice(prefix.length), await client.hgetall(key), report);
          if (entry !== undefined) entries.push(entry);
        }
      } while (cursor !== '0');
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
