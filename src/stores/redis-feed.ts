/**
 * The Redis store's change feed, as a reader sees it. Each write appends its change to its
 * feed shard's stream and publishes the shard's number on the channel, a wake-up. A reader
 * keeps a position (one stream id per shard) and reads each shard after it: on a wake-up, on
 * a reconnect of its connection, and on a slow poll for wake-ups lost on a cluster's bus. So
 * it resumes from where it was, with no gap or duplicate, whatever happened to pub/sub.
 */
import type { SnapshotChange, SnapshotListener, StoreErrorHandler } from '../core/types.js';
import { decodePosition, encodePart } from './feed-position.js';
import type { RedisSubscriber } from './redis-client.js';
import { notify } from './report.js';

/** Entries one read asks for: a reader far behind reads on in steps of this many. */
const READ_COUNT = 500;
/** How often every shard is read even without a wake-up. */
const POLL_MS = 1000;

/** A feed shard's entries after a position, or `undefined` when some are no longer kept. */
export type ShardEntries = Array<[id: string, message: string]> | undefined;

/** What the feed needs of its store. */
export interface FeedSource<F extends object> {
  readonly shards: number;
  /** The entries of `shard` after `cursor`, at most `count` of them. */
  read(shard: number, cursor: string, count: number): Promise<ShardEntries>;
  /** The id of the last entry of `shard` (`0-0` for none). */
  end(shard: number): Promise<string>;
  /** A feed message as a change at `id`; throws or answers `undefined` for one it cannot read. */
  decode(message: string, id: string): SnapshotChange<F> | undefined;
  /** A new connection subscribed to the wake-up channel; it reconnects by itself. */
  connect(onWake: (message: string) => void, onReconnect: () => void): RedisSubscriber;
  /** Subscribes the connection; rejects (with the reason reported) when Redis refuses. */
  listen(connection: RedisSubscriber): Promise<void>;
  /** Whether an error will not heal by trying again (an ACL refusal, a failed script). */
  permanent(error: unknown): boolean;
  readonly report: StoreErrorHandler;
}

/** One `subscribe`: its listener and where it is in each shard. */
interface Subscription<F extends object> {
  readonly listener: SnapshotListener<F>;
  /** The stream id last delivered per shard; `undefined` until the start is known. */
  cursors: string[] | undefined;
  /** `cursors` in the position's form, so that each change's id is one join. */
  parts: string[];
  since: string | undefined;
  /** Must start again from the feed's end, with a `reset` (a read found entries trimmed). */
  resetting: boolean;
  /** Its start is being read. */
  starting: boolean;
  /** A shard being read for this subscription. */
  pulling: boolean[];
  /** Bumped by a reset: reads begun before it are dropped. */
  generation: number;
  stopped: boolean;
  settle: { resolve(): void; reject(error: unknown): void } | undefined;
}

export class RedisFeed<F extends object> {
  readonly #source: FeedSource<F>;
  readonly #subscriptions = new Set<Subscription<F>>();
  /** Wake-ups per shard: a read begun before the last one must be made again. */
  readonly #wakes: number[];
  /** Reads in flight, by shard and cursor: subscriptions at the same place share one. */
  readonly #reads = new Map<string, { wakes: number; entries: Promise<ShardEntries> }>();
  #connection: RedisSubscriber | undefined;
  #listening: Promise<void> | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  /** Shards woken since the reads last looked. */
  readonly #woken = new Set<number>();
  /** A failure was reported and nothing has been read since: the next one is not. */
  #failing = false;

  constructor(source: FeedSource<F>) {
    this.#source = source;
    this.#wakes = new Array<number>(source.shards).fill(0);
  }

  /** Starts a subscription; `ready` settles once it knows where it starts. */
  add(listener: SnapshotListener<F>, since: string | undefined) {
    let settle: Subscription<F>['settle'];
    const ready = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const subscription: Subscription<F> = {
      listener,
      cursors: undefined,
      parts: [],
      since,
      resetting: false,
      starting: false,
      pulling: new Array<boolean>(this.#source.shards).fill(false),
      generation: 0,
      stopped: false,
      settle,
    };
    this.#subscriptions.add(subscription);
    this.#open();
    void this.#start(subscription);
    const remove = () => this.#remove(subscription);
    return { ready, remove };
  }

  /** The feed's end now, as a position: where a subscription without `since` starts. */
  async position(): Promise<string> {
    return (await this.#ends()).map(encodePart).join('_');
  }

  /** Stops every subscription and closes the connection. */
  async close(): Promise<void> {
    for (const subscription of this.#subscriptions) subscription.stopped = true;
    this.#subscriptions.clear();
    await this.#shut();
  }

  #remove(subscription: Subscription<F>): void {
    subscription.stopped = true;
    this.#subscriptions.delete(subscription);
    if (this.#subscriptions.size === 0) void this.#shut();
  }

  #open(): void {
    if (this.#connection !== undefined) return;
    const connection = this.#source.connect(
      (message) => this.#wake(Number(message)),
      () => this.#wakeAll(),
    );
    this.#connection = connection;
    this.#listening = this.#source.listen(connection);
    // Caught here; each subscription's start awaits it and says what became of it.
    this.#listening.catch(() => {});
    this.#poll = setInterval(() => this.#wakeAll(), POLL_MS);
    (this.#poll as { unref?(): void }).unref?.();
  }

  async #shut(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    this.#listening = undefined;
    clearInterval(this.#poll);
    await connection?.quit();
  }

  /** Where a subscription starts: after `since`, or at the feed's end, or with a reset. */
  async #start(subscription: Subscription<F>): Promise<void> {
    if (subscription.starting) return;
    subscription.starting = true;
    try {
      await this.#listening;
      if (subscription.stopped) return;
      const since = subscription.since;
      const cursors =
        since === undefined ? await this.#ends() : decodePosition(since, this.#source.shards);
      if (subscription.stopped) return;
      if (cursors === undefined) subscription.resetting = true;
      else this.#place(subscription, cursors);
      subscription.settle?.resolve();
      subscription.settle = undefined;
      this.#pullAll(subscription);
    } catch (error) {
      this.#failed(error);
      if (this.#source.permanent(error)) {
        subscription.settle?.reject(error);
        this.#remove(subscription);
      }
      // Otherwise the next poll starts it again.
    } finally {
      subscription.starting = false;
    }
  }

  #place(subscription: Subscription<F>, cursors: string[]): void {
    subscription.cursors = cursors;
    subscription.parts = cursors.map(encodePart);
  }

  /**
   * A write's wake-up. The reads wait for the wake-ups that arrived with it (a wave of writes
   * wakes a shard once per write): one read per shard takes them all.
   */
  #wake(shard: number): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.#source.shards) return;
    this.#wakes[shard] = (this.#wakes[shard] ?? 0) + 1;
    this.#woken.add(shard);
    if (this.#woken.size > 1) return;
    // A microtask: after the wake-ups of one read from the socket, and never held back by
    // fake timers in a host's tests.
    queueMicrotask(() => {
      const shards = [...this.#woken];
      this.#woken.clear();
      for (const subscription of this.#subscriptions) {
        for (const woken of shards) this.#pull(subscription, woken);
      }
    });
  }

  #wakeAll(): void {
    for (let shard = 0; shard < this.#source.shards; shard++) {
      this.#wakes[shard] = (this.#wakes[shard] ?? 0) + 1;
    }
    for (const subscription of this.#subscriptions) {
      if (subscription.settle !== undefined && subscription.cursors === undefined) {
        if (!subscription.resetting) void this.#start(subscription);
      } else this.#pullAll(subscription);
    }
  }

  #pullAll(subscription: Subscription<F>): void {
    if (subscription.resetting) {
      void this.#reset(subscription);
      return;
    }
    for (let shard = 0; shard < this.#source.shards; shard++) this.#pull(subscription, shard);
  }

  #pull(subscription: Subscription<F>, shard: number): void {
    if (subscription.stopped || subscription.cursors === undefined) return;
    if (subscription.resetting || subscription.pulling[shard]) return;
    subscription.pulling[shard] = true;
    void this.#drain(subscription, shard, subscription.generation);
  }

  /** Reads a shard for a subscription until it has seen every entry, delivering each once. */
  async #drain(subscription: Subscription<F>, shard: number, generation: number): Promise<void> {
    const current = () => !subscription.stopped && subscription.generation === generation;
    try {
      for (;;) {
        const wakes = this.#wakes[shard] ?? 0;
        const cursors = subscription.cursors as string[];
        const entries = await this.#read(shard, cursors[shard] as string, wakes);
        this.#failing = false;
        if (!current()) return;
        if (entries === undefined) {
          subscription.resetting = true;
          void this.#reset(subscription);
          return;
        }
        for (const [id, message] of entries) {
          cursors[shard] = id;
          subscription.parts[shard] = encodePart(id);
          this.#deliver(subscription, message, subscription.parts.join('_'));
          if (!current()) return;
        }
        if (entries.length < READ_COUNT && this.#wakes[shard] === wakes) break;
      }
    } catch (error) {
      this.#failed(error);
    }
    if (current()) subscription.pulling[shard] = false;
  }

  #deliver(subscription: Subscription<F>, message: string, id: string): void {
    let change: SnapshotChange<F> | undefined;
    try {
      change = this.#source.decode(message, id);
    } catch (error) {
      this.#source.report(error, { operation: 'decode' });
      return;
    }
    if (change !== undefined) notify(subscription.listener, change, this.#source.report);
  }

  /** One read of a shard after a cursor, shared by the subscriptions there since `wakes`. */
  #read(shard: number, cursor: string, wakes: number): Promise<ShardEntries> {
    const key = `${shard} ${cursor}`;
    const shared = this.#reads.get(key);
    if (shared !== undefined && shared.wakes >= wakes) return shared.entries;
    const read = { wakes, entries: this.#source.read(shard, cursor, READ_COUNT) };
    this.#reads.set(key, read);
    const forget = () => {
      if (this.#reads.get(key) === read) this.#reads.delete(key);
    };
    read.entries.then(forget, forget);
    return read.entries;
  }

  /** Moves a subscription to the feed's end and tells its listener to reload. */
  async #reset(subscription: Subscription<F>): Promise<void> {
    const generation = ++subscription.generation;
    subscription.pulling.fill(false);
    try {
      const ends = await this.#ends();
      if (subscription.stopped || subscription.generation !== generation) return;
      this.#place(subscription, ends);
      subscription.resetting = false;
      subscription.settle?.resolve();
      subscription.settle = undefined;
      notify(
        subscription.listener,
        { type: 'reset', id: subscription.parts.join('_') },
        this.#source.report,
      );
      this.#pullAll(subscription);
    } catch (error) {
      // Still resetting: the next poll tries again.
      this.#failed(error);
    }
  }

  #ends(): Promise<string[]> {
    const ends: Promise<string>[] = [];
    for (let shard = 0; shard < this.#source.shards; shard++) ends.push(this.#source.end(shard));
    return Promise.all(ends);
  }

  /** Reports a failed read once, until a read succeeds again. */
  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#source.report(error, { operation: 'connection' });
  }
}
