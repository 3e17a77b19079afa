/**
 * The Redis client as the store uses it — a `Redis` or a `Cluster` of ioredis — and how a
 * script is sent to it: failing fast while disconnected, loading the script on NOSCRIPT,
 * waiting for replicas when asked, and naming what an ACL refused.
 */
import { EventCoalescerError } from '../core/errors.js';
import { isNoScript, type RedisScript } from './redis-scripts.js';

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
  /** A cluster's nodes: `getAll` scans every master; cut commands are watched on all. */
  nodes?(role: 'master' | 'all'): RedisNode[];
  /** For `waitForReplicas`: the script and its WAIT go to one node together. */
  pipeline?(): RedisPipeline;
  /** A cluster's map of slots, refreshed when a pipeline meets a moved slot. */
  refreshSlotsCache?(): void;
  /** A cluster's slots: for each, its master's `host:port` first (batches go per node). */
  readonly slots?: ReadonlyArray<readonly string[] | undefined>;
  /** ioredis's options: with `autoResendUnfulfilledCommands: false`, cut commands fail. */
  readonly options?: unknown;
  /** `close` tells of a dropped connection; a cluster's `+node` of a node it added. */
  on?(event: 'close', listener: () => void): unknown;
  on?(event: '+node', listener: (node: RedisNode) => void): unknown;
}

/** A node of a cluster, as the store uses it: scanned, and watched for a dropped connection. */
export interface RedisNode extends RedisScanner {
  on?(event: 'close', listener: () => void): unknown;
}

/** The part of an `ioredis` connection the change feed uses. */
export interface RedisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  quit(): Promise<unknown>;
}

/** The part of an ioredis pipeline the store uses to wait for replicas. */
export interface RedisPipeline {
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): unknown;
  eval(script: string, numKeys: number, keysAndArgs: string[]): unknown;
  call(command: string, ...args: string[]): unknown;
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>;
}

/** ioredis's `autoResendUnfulfilledCommands`, of a `Redis` or of a `Cluster`'s nodes. */
function resendsCutCommands(options: unknown): boolean {
  const of = (value: unknown, key: string): unknown =>
    typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
  const own = of(options, 'autoResendUnfulfilledCommands');
  const nodes = of(of(options, 'redisOptions'), 'autoResendUnfulfilledCommands');
  return (own ?? nodes) !== false;
}

/**
 * Commands cut off by a dropped connection. ioredis forgets them when it does not resend
 * them (`autoResendUnfulfilledCommands: false`): they would never settle, so the store fails
 * each one itself, with `EC_CONNECTION_LOST`. It may or may not have run.
 */
function cutOffCommands(client: RedisClient) {
  const resends = resendsCutCommands(client.options);
  const out = new Set<(error: Error) => void>();
  if (!resends && typeof client.on === 'function') {
    const cut = (): void => {
      if (out.size === 0) return;
      const error = new EventCoalescerError(
        'EC_CONNECTION_LOST',
        'the Redis connection dropped before the command was answered; it may or may not have run',
      );
      for (const fail of [...out]) fail(error);
      out.clear();
    };
    if (typeof client.nodes === 'function') {
      // A cluster: each node's connection (a Redis of its own) drops on its own.
      client.on('+node', (node) => node.on?.('close', cut));
      for (const node of client.nodes('all')) node.on?.('close', cut);
    } else {
      client.on('close', cut);
    }
  }
  /** `command`, failed at once if the connection drops while it is out. */
  return <T>(command: () => Promise<T>): Promise<T> => {
    if (resends) return command();
    return new Promise<T>((resolve, reject) => {
      out.add(reject);
      command().then(
        (value) => {
          out.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          out.delete(reject);
          reject(error);
        },
      );
    });
  };
}

/** Sends the store's commands and scripts to `client`; see `run`. */
export function scriptRunner(
  client: RedisClient,
  options: { waitCount: number; waitTimeoutMs: number; channel: string },
) {
  const { waitCount, waitTimeoutMs, channel } = options;
  const tracked = cutOffCommands(client);

  /**
   * An ACL refusal names neither the command nor the key: say which, so the user can mend
   * the rule (see `redisAclRules`). A failed script is `EC_SCRIPT_ERROR`: a retry will not
   * mend it. Other errors pass as they are.
   */
  const refusal = (error: unknown, operation: string, keys: string[]): unknown => {
    const message = String((error as Error | undefined)?.message);
    if (/NOPERM|no permissions|can't (publish|access|run this command)/i.test(message)) {
      return new EventCoalescerError(
        'EC_ACL_REFUSED',
        `Redis refused ${operation} for this user (keys ${keys.join(', ')}, channel ${channel}): ${message}`,
        { cause: error },
      );
    }
    if (/^ERR .*(user_script|Error running script|script:)/i.test(message)) {
      return new EventCoalescerError(
        'EC_SCRIPT_ERROR',
        `the ${operation} script failed: ${message}`,
        {
          cause: error,
        },
      );
    }
    return error;
  };

  /** Fails at once while the client is not connected, instead of waiting in its queue. */
  const assertReady = (): void => {
    const status = client.status;
    if (status !== undefined && status !== 'ready') {
      throw new EventCoalescerError(
        'EC_NOT_CONNECTED',
        `the Redis client is not connected (status: ${status})`,
      );
    }
  };

  /** The script and a WAIT for replicas, pipelined to the node of the workspace's slot. */
  const runAndWait = async (script: RedisScript, keysAndArgs: string[]) => {
    const send = async (loaded: boolean) => {
      const pipeline = (client.pipeline as () => RedisPipeline).call(client);
      if (loaded) pipeline.evalsha(script.sha, script.keys, keysAndArgs);
      else pipeline.eval(script.source, script.keys, keysAndArgs);
      pipeline.call('WAIT', String(waitCount), String(waitTimeoutMs));
      return (await tracked(() => pipeline.exec())) ?? [];
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
      // The script ran on the master: a retry writes the same values again, changing nothing.
      throw new EventCoalescerError(
        'EC_REPLICAS_UNACKNOWLEDGED',
        `${acknowledged} of ${waitCount} replicas acknowledged the write within ${waitTimeoutMs} ms`,
      );
    }
    return result;
  };

  /**
   * EVALSHA (the first `keys` of `keysAndArgs` are keys), loading the script with EVAL the
   * first time Redis does not know it. While the client is not connected it fails at once
   * instead of waiting in ioredis's offline queue: a write the coalescer gave up must not
   * land later, so its retry rule owns every outcome.
   */
  const run = async (script: RedisScript, keysAndArgs: string[], keys = script.keys) => {
    assertReady();
    try {
      if (waitCount > 0 && script.writes) return await runAndWait(script, keysAndArgs);
      try {
        return await tracked(() => client.evalsha(script.sha, keys, keysAndArgs));
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return await tracked(() => client.eval(script.source, keys, keysAndArgs));
      }
    } catch (error) {
      throw refusal(error, script.operation, keysAndArgs.slice(0, Math.min(keys, 3)));
    }
  };

  /**
   * The script once per argument list, pipelined: one round trip for all of them (they must
   * share a node: on a cluster, one slot). One outcome per list, in order; a list Redis did
   * not know the script for is run again alone, loading it.
   */
  const runMany = async (
    script: RedisScript,
    lists: string[][],
  ): Promise<Array<{ error: unknown } | { value: unknown }>> => {
    assertReady();
    const pipeline = (client.pipeline as () => RedisPipeline).call(client);
    for (const keysAndArgs of lists) pipeline.evalsha(script.sha, script.keys, keysAndArgs);
    const results = (await tracked(() => pipeline.exec())) ?? [];
    return Promise.all(
      lists.map(async (keysAndArgs, i) => {
        const [error, value] = results[i] ?? [new Error('no reply'), undefined];
        if (error === null) return { value };
        if (isNoScript(error)) {
          try {
            return { value: await run(script, keysAndArgs) };
          } catch (again) {
            return { error: again };
          }
        }
        // A pipeline does not follow a moved slot by itself: learn the new map for the retry.
        if (/^(MOVED|ASK) /.test(error.message)) client.refreshSlotsCache?.();
        return { error: refusal(error, script.operation, keysAndArgs.slice(0, script.keys)) };
      }),
    );
  };

  /** A read, failing fast and failing cut-off commands as `run` does. */
  const read = async <T>(operation: string, keys: string[], command: () => Promise<T>) => {
    assertReady();
    try {
      return await tracked(command);
    } catch (error) {
      throw refusal(error, operation, keys);
    }
  };

  return { run, runMany, read, refusal };
}
