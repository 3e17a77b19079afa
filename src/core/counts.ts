import type { CoalescerStats } from './types.js';

/** The counters behind `stats()`, kept by the coalescer and its lanes. */
export type Counts = Omit<CoalescerStats, 'pending' | 'waiting' | 'backlog' | 'storeAvailable'>;

export function newCounts(): Counts {
  return {
    enqueued: 0,
    flushed: 0,
    skipped: 0,
    removed: 0,
    retried: 0,
    failed: 0,
    invalid: 0,
    dropped: 0,
    inFlight: 0,
  };
}
