import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import { EventCoalescer } from '../src/index.js';
import { syncStore } from './support/helpers.js';

/** A pino logger writing JSON lines into memory. */
function memoryPino() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe('loggers', () => {
  it('gives pino a warn line carrying the workspace and source of an invalid event', () => {
    const { logger, lines } = memoryPino();
    const emitter = new EventEmitter();
    createEventCollector({
      store: syncStore(),
      logger,
      sources: [
        {
          emitter,
          event: 'change',
          map: (id: string) => ({ workspaceId: id, fields: 'oops' as never }),
        },
      ],
    });
    emitter.emit('change', 'ws-9');
    const warn = lines.find((line) => line.level === 40);
    expect(warn).toMatchObject({ workspaceId: 'ws-9', source: 'event:change' });
    expect(String(warn?.msg)).toMatch(/fields is not a plain object/);
  });

  it('gives pino the error of a store call given up', () => {
    const { logger, lines } = memoryPino();
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('disk full');
    });
    const coalescer = new EventCoalescer(store, { logger, retry: { attempts: 1 } });
    coalescer.enqueue('ws-1', { a: 1 }, 'event:a', { immediate: true });
    const error = lines.find((line) => line.level === 50);
    expect(error).toMatchObject({ operation: 'upsert', workspaceId: 'ws-1', source: 'event:a' });
    expect(error?.err).toMatchObject({ message: 'disk full', type: 'Error' });
  });

  it('prints readably through console, object first', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const coalescer = new EventCoalescer(syncStore(), { logger: console });
      await coalescer.close();
      coalescer.enqueue('ws-1', { a: 1 }, 'event:a');
      expect(warn).toHaveBeenCalledWith(
        { workspaceId: 'ws-1', source: 'event:a' },
        expect.stringMatching(/after close/),
      );
    } finally {
      warn.mockRestore();
    }
  });
});
