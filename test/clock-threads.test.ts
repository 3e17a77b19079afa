import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { EventCoalescer, shareTimestampClock } from '../src/index.js';

const worker = new URL('./support/fixtures/stamp-worker.mjs', import.meta.url);

/** Stamps of `count` writes made in a worker thread. */
function stampsFromWorker(clock: SharedArrayBuffer | undefined, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(worker, {
      workerData: { clock, count },
      execArgv: ['--import', 'tsx'],
    });
    thread.once('message', (stamps: number[]) => {
      resolve(stamps);
      void thread.terminate();
    });
    thread.once('error', reject);
  });
}

describe('the timestamp clock across worker threads', () => {
  it('gives every write of every thread sharing it its own, increasing stamp', async () => {
    const clock = shareTimestampClock();
    const mine: number[] = [];
    const coalescer = new EventCoalescer(
      {
        upsert: (_id, _fields, _source, timestamp) => {
          mine.push(timestamp as number);
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { timestamps: true },
    );
    const threads = Promise.all([stampsFromWorker(clock, 20_000), stampsFromWorker(clock, 20_000)]);
    for (let i = 0; i < 2_000; i++) coalescer.enqueue('ws-1', { i }, 's', { immediate: true });
    const all = [...(await threads), mine];
    for (const stamps of all) {
      for (let i = 1; i < stamps.length; i++) {
        expect(stamps[i] as number).toBeGreaterThan(stamps[i - 1] as number);
      }
    }
    const every = all.flat();
    expect(new Set(every).size).toBe(every.length);
    // Stamps stay near the wall clock: 42,000 writes cannot run ahead by more than ~11 ms.
    expect(Math.max(...every)).toBeLessThan(Date.now() + 20);
  }, 30_000);

  it('is the same buffer when asked again, and refuses anything but such a buffer', () => {
    expect(shareTimestampClock()).toBe(shareTimestampClock());
    expect(() => shareTimestampClock(new ArrayBuffer(8) as never)).toThrow(/Expected `buffer`/);
  });
});
