/**
 * Whether the store answers. After a run of failed calls with no success between them, the
 * store is taken as away: writes stop calling it and wait, and one probe at a time tries it
 * at the retry rule's pace (gRPC's connection back-off: capped, jittered). The first call
 * that lands brings it back. Outlier detection in Envoy ejects a host the same way, after
 * consecutive failures; here the "host" is the whole store, since a lane cannot tell which
 * node of it a workspace lives on, and a partial outage keeps succeeding somewhere.
 */
import { backoffDelay, type RetryRule } from './retry-rule.js';
import { clearTimer, monotonicNow, setTimer, type Timer } from './timers.js';
import { healthChannel } from './tracing.js';
import type { Logger } from './types.js';

/** Failed calls in a row, none landing between them, that make the store count as away. */
export const AWAY_AFTER_FAILURES = 5;

export class StoreHealth {
  readonly #rule: RetryRule;
  readonly #logger: Logger;
  /** Makes one probe call; `false` when nothing waits that could be tried. */
  readonly #probe: () => boolean;
  readonly #backlog: () => number;
  #available = true;
  #failuresInARow = 0;
  #probesFailed = 0;
  #awaySince = 0;
  #timer: Timer | undefined;
  /** The probe's turn came while nothing waited: the next write held is tried at once. */
  #probeDue = false;

  constructor(rule: RetryRule, logger: Logger, probe: () => boolean, backlog: () => number) {
    this.#rule = rule;
    this.#logger = logger;
    this.#probe = probe;
    this.#backlog = backlog;
  }

  get available(): boolean {
    return this.#available;
  }

  /** A call landed: the store answers. Returns whether it was away until now. */
  succeeded(): boolean {
    this.#failuresInARow = 0;
    if (this.#available) return false;
    this.#available = true;
    this.#probesFailed = 0;
    this.#probeDue = false;
    this.#stopTimer();
    const awayMs = Math.round(monotonicNow() - this.#awaySince);
    const backlog = this.#backlog();
    this.#logger.info({ awayMs, backlog }, 'event-coalescer: the store is back; draining');
    if (healthChannel.hasSubscribers) healthChannel.publish({ available: true, awayMs, backlog });
    return true;
  }

  /** A call failed for a reason that may heal. */
  failed(error: unknown): void {
    this.#failuresInARow++;
    if (!this.#available || this.#failuresInARow < AWAY_AFTER_FAILURES) return;
    this.#available = false;
    this.#awaySince = monotonicNow();
    const backlog = this.#backlog();
    this.#logger.warn(
      { err: error, failuresInARow: this.#failuresInARow, backlog },
      'event-coalescer: the store is away; writes wait and the store is probed',
    );
    if (healthChannel.hasSubscribers) {
      healthChannel.publish({ available: false, error, backlog });
    }
    this.#schedule();
  }

  /** The probe failed: the next one comes after a longer back-off. */
  probeFailed(): void {
    this.#probesFailed++;
    this.#schedule();
  }

  /** While away, a probe is always coming: at its turn, or at the next write held. */
  ensureProbe(): void {
    if (!this.#available && this.#timer === undefined && !this.#probeDue) this.#schedule();
  }

  /** A write was held: if the probe's turn already came, it is the probe. */
  held(): void {
    if (!this.#probeDue) return;
    this.#probeDue = false;
    this.#probe();
  }

  /** Probes now instead of at the next turn (`flushAll`, `close`); the pace starts over. */
  probeNow(): void {
    this.#probesFailed = 0;
    if (this.#available || this.#timer === undefined) return;
    this.#stopTimer();
    this.#turn();
  }

  stop(): void {
    this.#stopTimer();
    this.#probeDue = false;
  }

  #schedule(): void {
    this.#stopTimer();
    this.#timer = setTimer(
      () => {
        this.#timer = undefined;
        this.#turn();
      },
      backoffDelay(this.#rule, this.#probesFailed + 1),
    );
  }

  #turn(): void {
    if (this.#available) return;
    if (!this.#probe()) this.#probeDue = true;
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }
}
