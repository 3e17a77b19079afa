/**
 * The PostgreSQL store's change feed. The changes table is the feed: each change has a
 * gapless position, and a subscriber reads the changes after its cursor. `LISTEN`/`NOTIFY` only
 * wakes readers up, a poll covers a wake-up lost with a connection, and a reconnect reads
 * again from every cursor: a subscriber that loses its connection misses nothing.
 */
import type { SnapshotChange, SnapshotListener, StoreErrorHandler } from '../core/types.js';
import { decodeChange } from './postgres-codec.js';
import type { PostgresNames } from './postgres-sql.js';
import { notify } from './report.js';

/** What the store needs of a `pg` client: `query`. */
export interface PostgresQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A client checked out of the pool, held for `LISTEN`. */
export interface PostgresPoolClient extends PostgresQueryable {
  on(event: 'notification', listener: (message: { channel: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (error?: unknown) => void): unknown;
  removeAllListeners(event?: string): unknown;
  release(destroy?: boolean | Error): void;
}

/** What the store needs of a `pg.Pool`: `query`, and `connect` for the feed's `LISTEN`. */
export interface PostgresPool extends PostgresQueryable {
  connect(): Promise<PostgresPoolClient>;
}

/** At most this many changes per read; a reader that got as many reads again at once. */
const READ_BATCH = 500;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** `<epoch>-<n>`: the feed's epoch (new with its tables) and a count of changes. */
const POSITION = /^([0-9a-f]{12})-(\d{1,15})$/;

function formatPosition(epoch: string, count: number): string {
  return `${epoch}-${count}`;
}

interface HeadRow {
  epoch: string;
  head: string;
  oldest: string | null;
}

interface ChangeRow {
  epoch: string;
  head: string;
  position: string | null;
  change: unknown;
}

/** One subscriber: its cursor, and whether a read is under way or asked for again. */
class Reader<F extends object> {
  readonly listener: SnapshotListener<F>;
  /** Where it is: `undefined` until its start is known. */
  epoch: string | undefined;
  cursor = 0;
  reading = false;
  again = false;
  closed = false;

  constructor(listener: SnapshotListener<F>) {
    this.listener = listener;
  }
}

export class PostgresFeed<F extends object> {
  readonly #pool: PostgresPool;
  readonly #names: PostgresNames;
  readonly #report: StoreErrorHandler;
  readonly #pollMs: number;
  readonly #readers = new Set<Reader<F>>();
  #client: PostgresPoolClient | undefined;
  /** Resolves once `LISTEN` is on (or the attempt failed: the poll reads anyway). */
  #listening: Promise<void> | undefined;
  #reconnectMs = RECONNECT_MIN_MS;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  #failing = false;

  constructor(pool: PostgresPool, names: PostgresNames, report: StoreErrorHandler, pollMs: number) {
    this.#pool = pool;
    this.#names = names;
    this.#report = report;
    this.#pollMs = pollMs;
  }

  /** The feed's position now. */
  async position(): Promise<string> {
    const { rows } = await this.#pool.query(
      `SELECT epoch, position AS head FROM ${this.#names.feed}`,
    );
    const row = rows[0] as HeadRow | undefined;
    if (row === undefined) throw new Error(`${this.#names.feed} has no row: run migrate() first`);
    return formatPosition(row.epoch, Number(row.head));
  }

  subscribe(
    listener: SnapshotListener<F>,
    since: string | undefined,
  ): (() => void) & { ready: Promise<void> } {
    const reader = new Reader(listener);
    this.#readers.add(reader);
    this.#start();
    const ready = this.#begin(reader, since);
    const unsubscribe = (): void => {
      reader.closed = true;
      this.#readers.delete(reader);
      if (this.#readers.size === 0) this.#stop();
    };
    return Object.assign(unsubscribe, { ready });
  }

  /** Ends every subscription and lets go of the `LISTEN` connection. */
  close(): void {
    for (const reader of this.#readers) reader.closed = true;
    this.#readers.clear();
    this.#stop();
  }

  /** Finds where the reader starts, delivering a reset when `since` cannot be resumed from. */
  async #begin(reader: Reader<F>, since: string | undefined): Promise<void> {
    await this.#listening;
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.#pool.query(
          `SELECT f.epoch, f.position AS head, (SELECT min(position) FROM ${this.#names.changes}) AS oldest FROM ${this.#names.feed} f`,
        );
        const row = rows[0] as HeadRow | undefined;
        if (row === undefined)
          throw new Error(`${this.#names.feed} has no row: run migrate() first`);
        this.#failing = false;
        const head = Number(row.head);
        const oldest = row.oldest === null ? head + 1 : Number(row.oldest);
        reader.epoch = row.epoch;
        reader.cursor = head;
        if (since !== undefined) {
          const match = POSITION.exec(since);
          const count = match === null ? Number.NaN : Number(match[2]);
          // Resumable: this feed's, not ahead of it, and every change after it still kept.
          if (match?.[1] === row.epoch && count <= head && count >= oldest - 1)
            reader.cursor = count;
          else
            notify(
              reader.listener,
              { type: 'reset', id: formatPosition(row.epoch, head) },
              this.#report,
            );
        }
        break;
      } catch (error) {
        // Subscribing while the database is away: the reader starts once it is back.
        this.#failed(error);
        if (reader.closed) return;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(RECONNECT_MAX_MS, 100 * 2 ** attempt)),
        );
      }
    }
    this.#read(reader);
  }

  #start(): void {
    if (this.#poll === undefined) {
      this.#poll = setInterval(() => this.#wakeAll(), this.#pollMs);
      this.#poll.unref?.();
    }
    if (this.#listening === undefined) this.#listening = this.#listen();
  }

  #stop(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#listening = undefined;
    if (client !== undefined) {
      client.removeAllListeners('notification');
      client.removeAllListeners('end');
      // Its LISTEN must not go back to the pool with it.
      client.release(true);
    }
  }

  /** Holds a client for `LISTEN`; a lost one is replaced, and every reader reads again. */
  async #listen(): Promise<void> {
    let client: PostgresPoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      this.#failed(error);
      this.#reconnect();
      return;
    }
    if (this.#readers.size === 0 || this.#listening === undefined) {
      client.release(true);
      return;
    }
    this.#client = client;
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost || this.#client !== client) return;
      lost = true;
      if (error !== undefined) this.#failed(error);
      this.#client = undefined;
      client.removeAllListeners('notification');
      client.release(true);
      this.#reconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === this.#names.channel) this.#wakeAll();
    });
    try {
      await client.query(`LISTEN "${this.#names.channel}"`);
      this.#reconnectMs = RECONNECT_MIN_MS;
      this.#failing = false;
      // Changes made while no connection listened are read now.
      this.#wakeAll();
    } catch (error) {
      onLost(error);
    }
  }

  /** An outage is reported once, when it starts, not at every read that fails during it. */
  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#report(error, { operation: 'connection' });
  }

  #reconnect(): void {
    if (this.#readers.size === 0 || this.#reconnectTimer !== undefined) return;
    const delay = this.#reconnectMs;
    this.#reconnectMs = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#readers.size > 0) this.#listening = this.#listen();
    }, delay);
    this.#reconnectTimer.unref?.();
  }

  #wakeAll(): void {
    for (const reader of this.#readers) if (reader.epoch !== undefined) this.#read(reader);
  }

  /** Reads and delivers what follows the reader's cursor; one read at a time per reader. */
  #read(reader: Reader<F>): void {
    if (reader.reading) {
      reader.again = true;
      return;
    }
    reader.reading = true;
    reader.again = false;
    void this.#readOnce(reader).then(
      (full) => {
        reader.reading = false;
        if (!reader.closed && (full || reader.again)) this.#read(reader);
      },
      (error: unknown) => {
        reader.reading = false;
        // The poll or the reconnect reads again.
        this.#failed(error);
      },
    );
  }

  /** One read; true when it got a full batch (more may follow). */
  async #readOnce(reader: Reader<F>): Promise<boolean> {
    const { rows } = await this.#pool.query(
      `SELECT f.epoch, f.position AS head, c.position, c.change FROM ${this.#names.feed} f
       LEFT JOIN LATERAL (SELECT position, change FROM ${this.#names.changes}
         WHERE position > $1 ORDER BY position LIMIT ${READ_BATCH}) c ON true`,
      [reader.cursor],
    );
    this.#failing = false;
    if (reader.closed) return false;
    const first = rows[0] as ChangeRow | undefined;
    if (first === undefined) return false;
    const head = Number(first.head);
    // The tables were made again (a new epoch), or the reader fell behind what is kept.
    const lost =
      first.epoch !== reader.epoch ||
      head < reader.cursor ||
      (first.position !== null && Number(first.position) !== reader.cursor + 1);
    if (lost) {
      reader.epoch = first.epoch;
      reader.cursor = head;
      notify(
        reader.listener,
        { type: 'reset', id: formatPosition(first.epoch, head) },
        this.#report,
      );
      return false;
    }
    for (const row of rows as ChangeRow[]) {
      if (row.position === null || reader.closed) break;
      const position = Number(row.position);
      reader.cursor = position;
      const change = decodeChange<F>(row.change, formatPosition(first.epoch, position));
      if (change !== undefined) notify(reader.listener, change as SnapshotChange<F>, this.#report);
    }
    return rows.length === READ_BATCH;
  }
}
