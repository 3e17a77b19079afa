/**
 * A node-redis client or cluster (the `redis` package, v5 and v6) as the Redis store's client:
 * the same commands, sent raw with `sendCommand`, so that replies have the shapes ioredis
 * gives them. The store's scripts, feed and checks then work the same on either client.
 */
import type { RedisClient, RedisNode, RedisPipeline, RedisSubscriber } from './redis-client.js';

type Args = readonly string[];

/**
 * The part of a node-redis client the store uses (`createClient()` of `redis`). Loosely typed:
 * node-redis's own types vary with its modules, scripts and RESP version.
 */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: Args): Promise<unknown>;
  multi(): unknown;
  duplicate(): unknown;
}

/** The part of a node-redis cluster the store uses (`createCluster()` of `redis`). */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
  ): Promise<unknown>;
  MULTI(routing?: string): unknown;
  readonly masters: ReadonlyArray<{ host: string; port: number }>;
  readonly slots: ReadonlyArray<{ master: { host: string; port: number } } | undefined>;
  nodeClient(node: { host: string; port: number }): Promise<unknown>;
  duplicate(): unknown;
}

interface ClientPipeline {
  addCommand(args: Args): unknown;
  execAsPipeline(): Promise<unknown[]>;
}

interface ClusterPipeline {
  addCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: Args): unknown;
  execAsPipeline(): Promise<unknown[]>;
}

/** A duplicate connection, for the feed's pub/sub. */
export interface NodeRedisSubscriber {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  on(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown;
  close?(): Promise<unknown>;
  quit?(): Promise<unknown>;
}

/** Whether `client` is node-redis's: it has `sendCommand` and `isOpen`, and no `evalsha`. */
export function isNodeRedis(client: unknown): client is NodeRedisClient | NodeRedisCluster {
  const candidate = client as { sendCommand?: unknown; evalsha?: unknown; isOpen?: unknown };
  return (
    typeof client === 'object' &&
    client !== null &&
    typeof candidate.sendCommand === 'function' &&
    typeof candidate.evalsha !== 'function' &&
    typeof candidate.isOpen === 'boolean'
  );
}

const isCluster = (client: NodeRedisClient | NodeRedisCluster): client is NodeRedisCluster =>
  Array.isArray((client as NodeRedisCluster).masters);

/** `HGETALL`'s reply as a record of strings, as ioredis gives it. */
function record(reply: unknown): Record<string, string> {
  // RESP3 gives a map: an object, or a Map with a type mapping that asks for one.
  const flat =
    reply instanceof Map
      ? [...reply].flat()
      : Array.isArray(reply)
        ? reply
        : Object.entries(reply ?? {}).flat();
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    Object.defineProperty(fields, String(flat[i]), {
      value: String(flat[i + 1]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return fields;
}

/** A pipeline's replies as ioredis gives them: `[error, result]` each. */
async function pairs(exec: () => Promise<unknown[]>): Promise<Array<[Error | null, unknown]>> {
  try {
    return (await exec()).map((reply) => [null, reply]);
  } catch (error) {
    const failed = error as { replies?: unknown[]; errorIndexes?: number[] };
    if (!Array.isArray(failed.replies) || !Array.isArray(failed.errorIndexes)) throw error;
    const errors = new Set(failed.errorIndexes);
    return failed.replies.map((reply, i) =>
      errors.has(i) ? [reply as Error, undefined] : [null, reply],
    );
  }
}

function subscriberOf(connection: NodeRedisSubscriber): RedisSubscriber {
  const messages = new Set<(channel: string, message: string) => void>();
  let connecting: Promise<unknown> | undefined;
  return {
    async subscribe(channel) {
      connecting ??= connection.isOpen ? Promise.resolve() : connection.connect();
      await connecting;
      // node-redis renews the subscription after a reconnect by itself.
      return connection.subscribe(channel, (message, from) => {
        for (const listener of messages) listener(from, message);
      });
    },
    on(event: 'message' | 'error' | 'ready', listener: (...args: never[]) => void) {
      if (event === 'message') messages.add(listener as (channel: string, message: string) => void);
      else connection.on(event, listener as (error?: unknown) => void);
      return this;
    },
    async quit() {
      if (!connection.isOpen) return undefined;
      return connection.close !== undefined ? connection.close() : connection.quit?.();
    },
  } as RedisSubscriber;
}

/** The store's client, over a node-redis client or cluster. */
export function fromNodeRedis(client: NodeRedisClient | NodeRedisCluster): RedisClient {
  const cluster = isCluster(client) ? client : undefined;
  const send = (args: Args, readonly = false): Promise<unknown> =>
    cluster !== undefined
      ? cluster.sendCommand(firstKey(args), readonly, [...args])
      : (client as NodeRedisClient).sendCommand(args);
  const scan = (target: (args: Args) => Promise<unknown>) =>
    (async (cursor, match, pattern, count, size, type, kind) =>
      (await target(['SCAN', cursor, match, pattern, count, String(size), type, kind])) as [
        string,
        string[],
      ]) as RedisNode['scan'];
  const script = (
    command: 'EVALSHA' | 'EVAL',
    body: string,
    numKeys: number,
    keysAndArgs: string[],
  ) => send([command, body, String(numKeys), ...keysAndArgs], false);
  const adapted: RedisClient = {
    get status() {
      const ready =
        cluster !== undefined
          ? ((cluster as { isReady?: boolean }).isReady ?? cluster.isOpen)
          : (client as NodeRedisClient).isReady;
      return ready ? 'ready' : 'connecting';
    },
    evalsha: (sha, numKeys, keysAndArgs) => script('EVALSHA', sha, numKeys, keysAndArgs),
    eval: (source, numKeys, keysAndArgs) => script('EVAL', source, numKeys, keysAndArgs),
    hgetall: async (key) => record(await send(['HGETALL', key], true)),
    scan: scan((args) => send(args, true)),
    duplicate: (() =>
      subscriberOf(client.duplicate() as NodeRedisSubscriber)) as RedisClient['duplicate'],
    pipeline(): RedisPipeline {
      const commands: string[][] = [];
      const pipeline: RedisPipeline = {
        evalsha: (sha, numKeys, keysAndArgs) =>
          commands.push(['EVALSHA', sha, String(numKeys), ...keysAndArgs]),
        eval: (source, numKeys, keysAndArgs) =>
          commands.push(['EVAL', source, String(numKeys), ...keysAndArgs]),
        call: (command, ...args) => commands.push([command, ...args]),
        exec() {
          if (cluster !== undefined) {
            // A pipeline goes to one node: the one of its first command's first key.
            const multi = cluster.MULTI(firstKey(commands[0] ?? [])) as ClusterPipeline;
            for (const args of commands) multi.addCommand(firstKey(args), false, args);
            return pairs(() => multi.execAsPipeline());
          }
          const multi = (client as NodeRedisClient).multi() as ClientPipeline;
          for (const args of commands) multi.addCommand(args);
          return pairs(() => multi.execAsPipeline());
        },
      };
      return pipeline;
    },
  };
  if (cluster !== undefined) {
    adapted.nodes = () =>
      cluster.masters.map((master) => ({
        scan: scan(async (args) =>
          ((await cluster.nodeClient(master)) as NodeRedisClient).sendCommand(args),
        ),
      }));
    // ioredis's slot map: for each slot, its master's `host:port` first.
    Object.defineProperty(adapted, 'slots', {
      value: new Proxy([], {
        get(target, property) {
          if (typeof property !== 'string' || !/^\d+$/.test(property))
            return Reflect.get(target, property);
          const master = cluster.slots[Number(property)]?.master;
          return master === undefined ? undefined : [`${master.host}:${master.port}`];
        },
      }),
    });
  }
  return adapted;
}

/** A script's or command's first key: scripts name theirs after the key count. */
function firstKey(args: Args): string | undefined {
  const [command] = args;
  if (command === 'EVALSHA' || command === 'EVAL') return Number(args[2]) > 0 ? args[3] : undefined;
  if (command === 'WAIT' || command === 'SCAN') return undefined;
  return args[1];
}
