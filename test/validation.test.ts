/** Options checked as strictly as arguments: a misspelling or a wrong type is an error, never a silent default. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createEventCollector, EventCoalescer } from '../src/index.js';
import { syncStore } from './support/helpers.js';

describe('misspelled and mistyped options', () => {
  it.each([
    [{ windowMS: 100 }, /Unknown option `options\.windowMS` \(did you mean `windowMs`\?\)/],
    [{ window: 100 }, /Unknown option `options\.window` \(did you mean `windowMs`\?\)/],
    [{ maxDelayMs: 100 }, /Unknown option `options\.maxDelayMs`; known: windowMs, maxWaitMs/],
    [
      { retry: { maxDelay: 10 } },
      /Unknown option `retry\.maxDelay` \(did you mean `maxDelayMs`\?\)/,
    ],
    [{ retry: 3 }, /Expected `retry` to be an object/],
    [{ timestamps: 'yes' }, /Expected `timestamps` to be a boolean/],
  ])('refuses %j, naming it', (options, message) => {
    expect(() => new EventCoalescer(syncStore(), options as never)).toThrow(message);
  });

  it('refuses a misspelled coalescer option given to a collector, before subscribing', () => {
    const emitter = new EventEmitter();
    expect(() =>
      createEventCollector({
        store: syncStore(),
        windowMS: 100,
        sources: [{ emitter, event: 'x', map: () => undefined }],
      } as never),
    ).toThrow(/Unknown option `deps\.windowMS` \(did you mean `windowMs`\?\)/);
    expect(() => createEventCollector({ store: syncStore(), source: [] } as never)).toThrow(
      /Unknown option `deps\.source` \(did you mean `sources`\?\)/,
    );
    expect(emitter.listenerCount('x')).toBe(0);
  });

  it.each([
    ['immediate', /Expected `options` to be an object like \{ immediate: true \}/],
    [{ immediate: 'yes' }, /Expected `options\.immediate` to be a boolean/],
    [{ imediate: true }, /Unknown option `options\.imediate`/],
  ])('refuses enqueue options %j instead of writing later', (options, message) => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    expect(() => coalescer.enqueue('ws-1', { a: 1 }, 's', options as never)).toThrow(message);
    expect(coalescer.pendingCount).toBe(0);
  });
});
