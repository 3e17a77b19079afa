/**
 * The Redis client as the store uses it — a `Redis` or a `Cluster` of ioredis — and how a
 * script is sent to it: failing fast while disconnected, loading the script on NOSCRIPT,
 * waiting for replicas when asked, and naming what an ACL refused.
 */
import { isNoScript, UPSERT } from './redis-scripts.js';

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

/** The part of an ioredis pipeline the store uses to wait for replicas. */
export interface RedisPipeline {
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): unknown;
  eval(script: string, numKeys: number, keysAndArgs: string[]): unknown;
  call(command: string, ...args: string[]): unknown;
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>;
}

/** Sends the store's scripts to `client`; see `run`. */
export function scriptRunner(
  client: RedisClient,
  options: { waitCount: number; waitTimeoutMs: number; channel: string },
) {
  const { waitCount, waitTimeoutMs, channel } = options;

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

  return { run, refusal };
}
