/**
 * Positions of the Redis store's change feed. A position is where a reader is in every feed
 * shard: one Redis Stream id per shard, written compactly (`<ms>.<seq>` in base 36, `0` for
 * none) and joined with `_`, shard 0 first.
 */

const STREAM_ID = /^(\d+)-(\d+)$/;
const PART = /^([0-9a-z]+)(?:\.([0-9a-z]+))?$/;

/** One shard's stream id (`1733212345678-3`) in a position's form (`m4a2b9xq.3`). */
export function encodePart(streamId: string): string {
  const match = STREAM_ID.exec(streamId);
  if (match === null) return '0';
  const ms = Number(match[1]).toString(36);
  const seq = Number(match[2]);
  return seq === 0 ? ms : `${ms}.${seq.toString(36)}`;
}

/** The stream ids of a position with `shards` shards, or `undefined` when it is not one. */
export function decodePosition(position: string, shards: number): string[] | undefined {
  const parts = position.split('_');
  if (parts.length !== shards) return undefined;
  const ids: string[] = [];
  for (const part of parts) {
    const match = PART.exec(part);
    if (match === null) return undefined;
    const ms = Number.parseInt(match[1] as string, 36);
    const seq = match[2] === undefined ? 0 : Number.parseInt(match[2], 36);
    if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return undefined;
    ids.push(`${ms}-${seq}`);
  }
  return ids;
}
