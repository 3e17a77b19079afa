/**
 * The designs the benchmark compares, behind one tiny interface. Each merges patches per
 * key (later defined values win) and remembers source labels in first-seen order.
 */
import { EventCoalescer } from 'event-coalescer';
import debounce from 'lodash.debounce';
import { debounceTime, groupBy, mergeMap, Subject, scan } from 'rxjs';

export type Patch = Record<string, unknown>;
export type OnWrite = (key: string, fields: Patch, source: string) => void;

export interface Coalescing {
  enqueue(key: string, fields: Patch, source: string): void;
  flushAll(): void | Promise<void>;
  readonly pendingCount: number;
}

export interface Implementation {
  name: string;
  create(windowMs: number, onWrite: OnWrite): Coalescing;
}

/** The merge every design must do: defined values win, undefined is skipped. */
function merge(target: Patch, patch: Patch): void {
  for (const key in patch) {
    const value = patch[key];
    if (value !== undefined) target[key] = value;
  }
}

const label = (sources: Set<string>): string => [...sources].join('+');

/** No timers at all: Map get/set + merge + source Set, the bookkeeping floor. */
const floor: Implementation = {
  name: 'floor',
  create(_windowMs, onWrite) {
    const pending = new Map<string, { fields: Patch; sources: Set<string> }>();
    return {
      enqueue(key, fields, source) {
        let entry = pending.get(key);
        if (entry === undefined) {
          entry = { fields: {}, sources: new Set() };
          pending.set(key, entry);
        }
        merge(entry.fields, fields);
        entry.sources.add(source);
      },
      flushAll() {
        for (const [key, entry] of pending) onWrite(key, entry.fields, label(entry.sources));
        pending.clear();
      },
      get pendingCount() {
        return pending.size;
      },
    };
  },
};

/**
 * The floor plus one clock read per enqueue, kept with the entry: what any design that knows
 * when each key was last touched must pay at least.
 */
const floorClock: Implementation = {
  name: 'floor+clock',
  create(_windowMs, onWrite) {
    const pending = new Map<string, { fields: Patch; sources: Set<string>; lastAt: number }>();
    return {
      enqueue(key, fields, source) {
        const now = performance.now();
        let entry = pending.get(key);
        if (entry === undefined) {
          entry = { fields: {}, sources: new Set(), lastAt: now };
          pending.set(key, entry);
        }
        entry.lastAt = now;
        merge(entry.fields, fields);
        entry.sources.add(source);
      },
      flushAll() {
        for (const [key, entry] of pending) onWrite(key, entry.fields, label(entry.sources));
        pending.clear();
      },
      get pendingCount() {
        return pending.size;
      },
    };
  },
};

/** The straightforward design: a timer per key, cleared and set again on every enqueue. */
const naive: Implementation = {
  name: 'naive',
  create(windowMs, onWrite) {
    interface Entry {
      fields: Patch;
      sources: Set<string>;
      timer: NodeJS.Timeout;
    }
    const pending = new Map<string, Entry>();
    const write = (key: string): void => {
      const entry = pending.get(key);
      if (entry === undefined) return;
      pending.delete(key);
      onWrite(key, entry.fields, label(entry.sources));
    };
    return {
      enqueue(key, fields, source) {
        let entry = pending.get(key);
        if (entry === undefined) {
          entry = { fields: {}, sources: new Set(), timer: setTimeout(write, windowMs, key) };
          pending.set(key, entry);
        } else {
          clearTimeout(entry.timer);
          entry.timer = setTimeout(write, windowMs, key);
        }
        merge(entry.fields, fields);
        entry.sources.add(source);
      },
      flushAll() {
        for (const [key, entry] of [...pending]) {
          clearTimeout(entry.timer);
          write(key);
        }
      },
      get pendingCount() {
        return pending.size;
      },
    };
  },
};

/** A `lodash.debounce` per key; the merge is done outside it. */
const lodash: Implementation = {
  name: 'lodash',
  create(windowMs, onWrite) {
    interface Entry {
      fields: Patch;
      sources: Set<string>;
      debounced: ReturnType<typeof debounce>;
    }
    const pending = new Map<string, Entry>();
    return {
      enqueue(key, fields, source) {
        let entry = pending.get(key);
        if (entry === undefined) {
          const created: Entry = {
            fields: {},
            sources: new Set(),
            debounced: debounce(() => {
              pending.delete(key);
              onWrite(key, created.fields, label(created.sources));
            }, windowMs),
          };
          entry = created;
          pending.set(key, entry);
        }
        merge(entry.fields, fields);
        entry.sources.add(source);
        entry.debounced();
      },
      flushAll() {
        for (const entry of [...pending.values()]) entry.debounced.flush();
      },
      get pendingCount() {
        return pending.size;
      },
    };
  },
};

/** RxJS: `groupBy(key)` then, per group, `scan(merge)` + `debounceTime`. */
const rxjs: Implementation = {
  name: 'rxjs',
  create(windowMs, onWrite) {
    interface Event {
      key: string;
      fields: Patch;
      source: string;
    }
    interface State {
      key: string;
      fields: Patch;
      sources: Set<string>;
    }
    const pending = new Set<string>();
    let subject = new Subject<Event>();
    const subscribe = (): void => {
      subject
        .pipe(
          groupBy((event) => event.key),
          mergeMap((group) =>
            group.pipe(
              scan(
                (state: State, event: Event) => {
                  merge(state.fields, event.fields);
                  state.sources.add(event.source);
                  return state;
                },
                { key: group.key, fields: {}, sources: new Set<string>() },
              ),
              debounceTime(windowMs),
            ),
          ),
        )
        .subscribe((state) => {
          pending.delete(state.key);
          onWrite(state.key, state.fields, label(state.sources));
        });
    };
    subscribe();
    return {
      enqueue(key, fields, source) {
        pending.add(key);
        subject.next({ key, fields, source });
      },
      flushAll() {
        // debounceTime emits what it holds when its source completes.
        subject.complete();
        subject = new Subject<Event>();
        subscribe();
      },
      get pendingCount() {
        return pending.size;
      },
    };
  },
};

/** This library, with its real semantics; `leading` writes the first event of a burst at once. */
export function eventCoalescerWith(
  name: string,
  leading: boolean,
  Coalescer: typeof EventCoalescer = EventCoalescer,
): Implementation {
  return {
    name,
    create(windowMs, onWrite) {
      const store = {
        upsert: onWrite,
        getByWorkspaceId: () => ({}),
        remove: () => {},
      };
      // The enqueue-only workloads use a long window and turn maxWait off, so that nothing
      // fires while measuring; the churn workload keeps the default maxWait.
      const enqueueOnly = windowMs >= 10_000;
      return new Coalescer(store, {
        windowMs,
        ...(enqueueOnly ? { maxWaitMs: Number.POSITIVE_INFINITY } : {}),
        leading,
        canCreate: () => true,
      });
    },
  };
}

export const implementations: Implementation[] = [
  floor,
  floorClock,
  naive,
  lodash,
  rxjs,
  eventCoalescerWith('event-coalescer', false),
  eventCoalescerWith('event-coalescer-leading', true),
];
