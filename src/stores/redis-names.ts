/**
 * The Redis store's names: key prefixes, the feed shards and their hash tags, the escaped id
 * of each workspace, the wake-up channel, SCAN patterns, and the least ACL a store with these
 * names needs.
 */
import { expected } from '../core/describe.js';

/** The options that name a store's keys and channel. */
export interface StoreNamesOptions {
  prefix?: string | undefined;
  tombstonePrefix?: string | undefined;
  channel?: string | undefined;
}

/** `text` with the glob characters of SCAN MATCH and ACL patterns escaped. */
export const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&');
/** `prefix{*` for SCAN MATCH: every workspace hash of the prefix. */
export const matchPrefix = (prefix: string): string => `${escapeGlob(prefix)}{*`;

/** A string option, or `fallback` when undefined. */
function stringOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new TypeError(expected(name, 'a string', value));
  return value;
}

/** A key prefix: braces would take the hash tag away from the workspace id. */
function prefixOption(name: string, value: unknown, fallback: string): string {
  const prefix = stringOption(name, value, fallback);
  if (/[{}]/.test(prefix)) {
    throw new TypeError(expected(name, 'a string without braces (they make hash tags)', value));
  }
  return prefix;
}

/** A UTF-16 surrogate without its pair: UTF-8 cannot carry it, Redis would get U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The workspace id as a hash tag: Redis hashes the text between a key's first `{` and the
 * next `}`, so braces in an id are written `%7B`/`%7D` (and `%` as `%25`), and a lone
 * surrogate, which UTF-8 cannot carry, as `%uD800`. Every id keeps a non-empty tag of its
 * own, keys of different ids never meet, and the tag reads back as the id.
 */
export const hashTag = (workspaceId: string): string =>
  /[{}%\uD800-\uDFFF]/.test(workspaceId)
    ? workspaceId
        .replace(/%/g, '%25')
        .replace(/\{/g, '%7B')
        .replace(/\}/g, '%7D')
        .replace(LONE_SURROGATE, (unit) => `%u${unit.charCodeAt(0).toString(16).toUpperCase()}`)
    : workspaceId;

export const idOfTag = (tag: string): string =>
  tag.includes('%')
    ? tag
        .replace(/%u([0-9A-F]{4})/g, (_, code: string) =>
          String.fromCharCode(Number.parseInt(code, 16)),
        )
        .replace(/%7B/g, '{')
        .replace(/%7D/g, '}')
        .replace(/%25/g, '%')
    : tag;

/** Redis Cluster's key hash (CRC16/XMODEM) of an ASCII tag, as a slot from 0 to 16383. */
export function slotOf(tag: string): number {
  let crc = 0;
  for (let i = 0; i < tag.length; i++) {
    crc ^= tag.charCodeAt(i) << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/**
 * The hash tag of each feed shard. Shard `k` of `n` gets the first tag `k.j` whose slot lies
 * in the `k`th `n`th of the slot range, so that the shards spread over a cluster's masters
 * (which hold contiguous slot ranges) as evenly as the slot map allows.
 */
export function shardTags(shards: number): string[] {
  const tags: string[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const low = Math.floor((shard * 16384) / shards);
    const high = Math.floor(((shard + 1) * 16384) / shards);
    for (let j = 0; ; j++) {
      const slot = slotOf(`${shard}.${j}`);
      if (slot >= low && slot < high) {
        tags.push(`${shard}.${j}`);
        break;
      }
    }
  }
  return tags;
}

/** The feed shard of a workspace: FNV-1a of its id, the same in every process. */
export function shardOf(workspaceId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < workspaceId.length; i++) {
    hash ^= workspaceId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** The names a store uses, from its options: key prefixes and channel. */
export function storeNames(options: StoreNamesOptions) {
  const prefix = prefixOption('prefix', options.prefix, 'snapshot:');
  const tombstonePrefix = prefixOption(
    'tombstonePrefix',
    options.tombstonePrefix,
    `${prefix.replace(/:$/, '')}-removed:`,
  );
  if (tombstonePrefix === prefix) {
    throw new TypeError(
      expected('tombstonePrefix', `a prefix other than prefix ("${prefix}")`, tombstonePrefix),
    );
  }
  const channel = stringOption('channel', options.channel, `${prefix}changes`);
  return { prefix, tombstonePrefix, channel };
}

/** Each key prefix in use by a store of this process: what it holds, and its partner prefix. */
const prefixesInUse = new Map<
  string,
  { holds: 'hashes' | 'tombstones'; partner: string; stores: number }
>();

/**
 * Claims a store's two key prefixes for this process until the returned release is called.
 * Stores with the same two prefixes share them (replicas of one store); a prefix that another
 * store uses for the other kind of key, or with another partner, is refused: the ACL rules of
 * one would own the other's keys (its user could delete a tombstone, and a late write then
 * resurrect a removed workspace), and the two would read each other's keys as their own.
 */
export function claimPrefixes(prefix: string, tombstonePrefix: string): () => void {
  const claims = [
    { name: 'prefix', value: prefix, holds: 'hashes', partner: tombstonePrefix },
    { name: 'tombstonePrefix', value: tombstonePrefix, holds: 'tombstones', partner: prefix },
  ] as const;
  for (const claim of claims) {
    const inUse = prefixesInUse.get(claim.value);
    if (inUse !== undefined && (inUse.holds !== claim.holds || inUse.partner !== claim.partner)) {
      const other =
        inUse.holds === 'hashes'
          ? `prefix "${claim.value}", tombstonePrefix "${inUse.partner}"`
          : `prefix "${inUse.partner}", tombstonePrefix "${claim.value}"`;
      throw new TypeError(
        `event-coalescer: ${claim.name} "${claim.value}" overlaps the names of another Redis store in this process (${other}); give each store prefixes of its own`,
      );
    }
  }
  for (const claim of claims) {
    const inUse = prefixesInUse.get(claim.value);
    if (inUse === undefined) {
      prefixesInUse.set(claim.value, { holds: claim.holds, partner: claim.partner, stores: 1 });
    } else inUse.stores++;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const claim of claims) {
      const inUse = prefixesInUse.get(claim.value);
      if (inUse !== undefined && --inUse.stores === 0) prefixesInUse.delete(claim.value);
    }
  };
}

/**
 * The least a store with these options needs from Redis's ACL: its own keys (its feed's
 * streams are under `prefix`), its channel and the commands it and its scripts call —
 * nothing of another prefix. For
 * `ACL SETUSER <user> on ><password> ...rules`, on every node of a cluster.
 *
 * @example
 * await admin.acl('SETUSER', 'snapshots', 'on', '>secret', ...redisAclRules({ cluster: true }));
 */
export function redisAclRules(
  options: StoreNamesOptions & {
    /** The client is an ioredis `Cluster` (it reads the slot map). */
    cluster?: boolean;
    /** The store uses `waitForReplicas`. */
    waitForReplicas?: boolean;
  } = {},
): string[] {
  const { prefix, tombstonePrefix, channel } = storeNames(options);
  return [
    `~${escapeGlob(prefix)}{*`,
    `~${escapeGlob(tombstonePrefix)}{*`,
    `&${escapeGlob(channel)}`,
    // Scripts, and the commands inside them.
    '+evalsha',
    '+eval',
    '+get',
    '+set',
    '+del',
    '+hmget',
    '+hset',
    '+publish',
    // The feed's streams, in the write scripts and the feed's reading scripts.
    '+xadd',
    '+xrange',
    '+xrevrange',
    '+xinfo|stream',
    '+exists',
    // Crash recovery: marks, the sets of marked workspaces, the registry and its clock.
    '+hget',
    '+hdel',
    '+sadd',
    '+smembers',
    '+zadd',
    '+zrangebyscore',
    '+zremrangebyscore',
    '+zrem',
    '+time',
    // Reads and the change feed.
    '+hgetall',
    '+scan',
    '+subscribe',
    // What ioredis sends when it connects: INFO for its ready check, SELECT for a `db` other
    // than 0 (a cluster has only database 0).
    '+info',
    ...(options.cluster === true
      ? ['+cluster|slots', '+cluster|info', '+client|setname']
      : ['+select']),
    ...(options.waitForReplicas === true ? ['+wait'] : []),
  ];
}
