/**
 * Writes batched across workspaces, for a store with `upsertMany`. While a wave is open (the
 * deadlines handing over what is due, `flushAll`, lanes released by a store that came back),
 * each lane's upsert joins the batch instead of calling the store; when the wave closes, the
 * batch goes out in calls of at most `batchSize` items, and each lane gets its own item's
 * outcome, as if it had made the call itself: synchronously when the store answers so, and
 * one item's failure is that lane's alone. A batch of one is a plain `upsert`.
 */
import { adopt, attemptMethod, Thrown, whenSettled } from './guard.js';
import type { SnapshotStore, UpsertItem, UpsertOutcome } from './types.js';

/** An item's outcome as a lane takes it: a value, a `Thrown`, a rejection, or a promise of one. */
export class Rejected {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/**
 * An item whose batch is out: the lane waits for it as for a promise (in flight, timed,
 * abortable), but hears of it synchronously, so that the lanes a batch's answer frees start
 * their next writes in one wave, and one batch.
 */
export class Pending {
  #listeners: [(value: unknown) => void, (error: unknown) => void] | undefined;
  #outcome: { value: unknown } | { error: unknown } | undefined;

  listen(onValue: (value: unknown) => void, onError: (error: unknown) => void): void {
    const outcome = this.#outcome;
    if (outcome === undefined) this.#listeners = [onValue, onError];
    else if ('error' in outcome) onError(outcome.error);
    else onValue(outcome.value);
  }

  settle(answer: unknown): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = answer instanceof Rejected ? { error: answer.error } : { value: answer };
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners === undefined) return;
    if (answer instanceof Rejected) listeners[1](answer.error);
    else listeners[0](answer);
  }
}

type Answer = (answer: unknown) => void;

export class WriteBatch<F extends object> {
  readonly #store: SnapshotStore<F>;
  readonly #batchSize: number;
  #depth = 0;
  #sending = false;
  #waves = 0;
  #items: UpsertItem<F>[] = [];
  #answers: Answer[] = [];

  constructor(store: SnapshotStore<F>, batchSize: number) {
    this.#store = store;
    this.#batchSize = batchSize;
  }

  /** Whether an upsert made now joins the batch. */
  get open(): boolean {
    return this.#depth > 0;
  }

  /** Waves opened so far: the lanes of one share their slots (see `WriteLanes`). */
  get waves(): number {
    return this.#waves;
  }

  /** Items per call. */
  get size(): number {
    return this.#batchSize;
  }

  /** Runs `wave`; the upserts it starts go out together once it (the outermost) returns. */
  wave(wave: () => void): void {
    if (this.#depth++ === 0) this.#waves++;
    try {
      wave();
    } finally {
      if (--this.#depth === 0) this.#send();
    }
  }

  add(item: UpsertItem<F>, answer: Answer): void {
    this.#items.push(item);
    this.#answers.push(answer);
  }

  #send(): void {
    // Answers start new waves (a lane that landed frees a slot for the next): their upserts
    // join the queue and go out from this loop, so a long run of synchronous answers neither
    // recurses nor loses its batching.
    if (this.#sending) return;
    this.#sending = true;
    try {
      while (this.#items.length > 0) {
        const items = this.#items.splice(0, this.#batchSize);
        const answers = this.#answers.splice(0, this.#batchSize);
        if (items.length === 1) this.#single(items[0] as UpsertItem<F>, answers[0] as Answer);
        else this.#many(items, answers);
      }
    } finally {
      this.#sending = false;
    }
  }

  #single(item: UpsertItem<F>, answer: Answer): void {
    const { workspaceId, fields, source, timestamp, call } = item;
    answer(attemptMethod(this.#store, 'upsert', workspaceId, fields, source, timestamp, call));
  }

  #many(items: UpsertItem<F>[], answers: Answer[]): void {
    const result = attemptMethod(this.#store, 'upsertMany', items);
    if (result instanceof Thrown) {
      for (const answer of answers) answer(result);
      return;
    }
    const later = adopt(result);
    if (later === undefined) {
      this.#settle(result, answers);
      return;
    }
    // Each lane waits for its item as for a call of its own: in flight, timed, abortable.
    const pendings = answers.map(() => new Pending());
    for (const [i, answer] of answers.entries()) answer(pendings[i]);
    const settles = pendings.map((pending) => (answer: unknown) => pending.settle(answer));
    whenSettled(
      later,
      (outcomes) => this.wave(() => this.#settle(outcomes, settles)),
      (error) =>
        this.wave(() => {
          for (const settle of settles) settle(new Rejected(error));
        }),
    );
  }

  /** Hands each item its outcome; an answer that is not one outcome per item fails them all. */
  #settle(outcomes: unknown, answers: Answer[]): void {
    if (!Array.isArray(outcomes) || outcomes.length !== answers.length) {
      const error = new TypeError(
        `upsertMany answered ${Array.isArray(outcomes) ? `${outcomes.length} outcomes` : typeof outcomes} for ${answers.length} items; expected one outcome per item`,
      );
      for (const answer of answers) answer(new Rejected(error));
      return;
    }
    answers.forEach((answer, i) => {
      const outcome = outcomes[i] as UpsertOutcome | undefined;
      if (outcome?.status === 'fulfilled') answer(outcome.value);
      else if (outcome?.status === 'rejected') answer(new Rejected(outcome.reason));
      else answer(new Rejected(new TypeError(`upsertMany's outcome ${i} is not { status }`)));
    });
  }
}
