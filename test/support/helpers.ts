import { EventEmitter } from 'node:events';
import { vi } from 'vitest';
import type { Fields, Patch, SnapshotStore, StoreCallOptions } from '../../src/index.js';
import { meaningfulArgs } from './store-matchers.js';

/** A promise with its settle functions, to gate an async store call by hand. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A synchronous store whose methods are spies; every workspace is known unless `known` says otherwise. */
export function syncStore(known: (workspaceId: string) => boolean = () => true) {
  return {
    upsert:
      vi.fn<(id: string, fields: Patch<Fields>, source: string, timestamp?: number) => void>(),
    getByWorkspaceId: vi.fn((id: string) => (known(id) ? { workspaceId: id } : undefined)),
    remove: vi.fn<(id: string, timestamp?: number) => void>(),
  } satisfies SnapshotStore;
}

export interface GatedCall {
  method: 'upsert' | 'remove' | 'getByWorkspaceId';
  /** What the call carries: its trailing signal and an undefined timestamp left out. */
  args: unknown[];
  /** The call's signal, aborted when the coalescer stops waiting for it. */
  signal: AbortSignal | undefined;
  gate: Deferred<unknown>;
}

/** An asynchronous store: each call waits until the test settles its gate. */
export function gatedStore() {
  const calls: GatedCall[] = [];
  const record =
    (method: GatedCall['method']) =>
    (...args: unknown[]) => {
      const gate = deferred<unknown>();
      const call = args[args.length - 1] as StoreCallOptions | undefined;
      calls.push({ method, args: meaningfulArgs(args), signal: call?.signal, gate });
      return gate.promise;
    };
  const store: SnapshotStore = {
    upsert: record('upsert'),
    getByWorkspaceId: record('getByWorkspaceId'),
    remove: record('remove'),
  };
  return { store, calls };
}

/** Lets promise callbacks run (fake timers do not fake microtasks). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** The five domain emitters of a workspace host, as the preset takes them. */
export function workspaceDomains() {
  return {
    workspaceStateMachine: new EventEmitter(),
    prSnapshotService: new EventEmitter(),
    ratchetService: new EventEmitter(),
    runScriptStateMachine: new EventEmitter(),
    workspaceActivityService: new EventEmitter(),
  };
}
