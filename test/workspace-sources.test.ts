import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createEventCollector,
  PR_SNAPSHOT_UPDATED,
  type PrSnapshotUpdatedEvent,
  RATCHET_STATE_CHANGED,
  RUN_SCRIPT_STATUS_CHANGED,
  WORKSPACE_ACTIVE,
  WORKSPACE_IDLE,
  WORKSPACE_STATE_CHANGED,
  type WorkspaceEventNames,
  type WorkspaceSnapshotFields,
  type WorkspaceSourcesOptions,
  type WorkspaceStateChangedEvent,
  workspaceSnapshotSources,
} from '../src/collector/index.js';
import { syncStore, workspaceDomains } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

/** The fields of a host that writes a few more than the preset. */
interface HostFields extends WorkspaceSnapshotFields {
  prUrl: string;
  name: string;
  branchName: string;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Five domain emitters wired through the preset; every workspace is known unless `known` says otherwise. */
function host(
  eventNames: WorkspaceEventNames | WorkspaceSourcesOptions<HostFields> = {},
  known: (id: string) => boolean = () => true,
) {
  const domains = workspaceDomains();
  const store = syncStore(known);
  const collector = createEventCollector({
    store,
    sources: workspaceSnapshotSources<HostFields>(domains, eventNames),
  });
  const written = () => {
    vi.advanceTimersByTime(150);
    return storeArgs(store.upsert);
  };
  return { domains, store, collector, written };
}

describe('workspaceSnapshotSources', () => {
  it('exports the event names as constants', () => {
    expect([
      WORKSPACE_STATE_CHANGED,
      PR_SNAPSHOT_UPDATED,
      RATCHET_STATE_CHANGED,
      RUN_SCRIPT_STATUS_CHANGED,
      WORKSPACE_ACTIVE,
      WORKSPACE_IDLE,
    ]).toEqual([
      'workspace_state_changed',
      'pr_snapshot_updated',
      'ratchet_state_changed',
      'run_script_status_changed',
      'workspace_active',
      'workspace_idle',
    ]);
  });

  it('maps a workspace state change to status', () => {
    const { domains, written } = host();
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'NEW',
      toStatus: 'READY',
    });
    expect(written()).toEqual([['ws-1', { status: 'READY' }, 'event:workspace_state_changed']]);
  });

  it('removes an ARCHIVED workspace at once and drops its pending patch', () => {
    const { domains, store, written } = host();
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromState: 'A',
      toState: 'B',
    });
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'READY',
      toStatus: 'ARCHIVED',
    });
    expect(store.remove).toHaveStoreCall('ws-1');
    expect(written()).toEqual([]);
  });

  it('maps a PR snapshot to prNumber, prState and prCiStatus, never prReviewState', () => {
    const { domains, written } = host();
    domains.prSnapshotService.emit(PR_SNAPSHOT_UPDATED, {
      workspaceId: 'ws-1',
      prNumber: 42,
      prState: 'OPEN',
      prCiStatus: 'PASSING',
      prReviewState: 'APPROVED',
    });
    const calls = written();
    expect(calls).toEqual([
      [
        'ws-1',
        { prNumber: 42, prState: 'OPEN', prCiStatus: 'PASSING' },
        'event:pr_snapshot_updated',
      ],
    ]);
    expect(calls[0]?.[1]).not.toHaveProperty('prReviewState');
  });

  it('maps a ratchet state change to ratchetState', () => {
    const { domains, written } = host();
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromState: 'IDLE',
      toState: 'RUNNING',
    });
    expect(written()).toEqual([
      ['ws-1', { ratchetState: 'RUNNING' }, 'event:ratchet_state_changed'],
    ]);
  });

  it('maps a run-script status change to runScriptStatus', () => {
    const { domains, written } = host();
    domains.runScriptStateMachine.emit(RUN_SCRIPT_STATUS_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'IDLE',
      toStatus: 'RUNNING',
    });
    expect(written()).toEqual([
      ['ws-1', { runScriptStatus: 'RUNNING' }, 'event:run_script_status_changed'],
    ]);
  });

  it('maps activity to isWorking true and false', () => {
    const { domains, written, store } = host();
    domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, { workspaceId: 'ws-1' });
    expect(written()).toEqual([['ws-1', { isWorking: true }, 'event:workspace_active']]);
    store.upsert.mockClear();
    domains.workspaceActivityService.emit(WORKSPACE_IDLE, { workspaceId: 'ws-1' });
    expect(written()).toEqual([['ws-1', { isWorking: false }, 'event:workspace_idle']]);
  });

  it('accepts a bare workspace id for activity events', () => {
    const { domains, written } = host();
    domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, 'ws-1');
    expect(written()).toEqual([['ws-1', { isWorking: true }, 'event:workspace_active']]);
  });

  it('coalesces a burst across domains into one write with every source label', () => {
    const { domains, written } = host();
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'NEW',
      toStatus: 'READY',
    });
    domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, { workspaceId: 'ws-1' });
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromState: 'A',
      toState: 'B',
    });
    expect(written()).toEqual([
      [
        'ws-1',
        { status: 'READY', isWorking: true, ratchetState: 'B' },
        'event:workspace_state_changed+event:workspace_active+event:ratchet_state_changed',
      ],
    ]);
  });

  it('subscribes to overridden event names and labels writes with them', () => {
    const { domains, written } = host({ workspaceActive: 'busy' });
    domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, { workspaceId: 'ws-1' });
    domains.workspaceActivityService.emit('busy', { workspaceId: 'ws-2' });
    expect(written()).toEqual([['ws-2', { isWorking: true }, 'event:busy']]);
  });

  it('skips an unknown workspace without projectId, as the host reconciliation seeds it', () => {
    const { domains, collector, written } = host({}, () => false);
    domains.workspaceActivityService.emit(WORKSPACE_ACTIVE, { workspaceId: 'ws-1' });
    expect(written()).toEqual([]);
    expect(collector.coalescer.stats().skipped).toBe(1);
  });

  it('counts a payload without a workspace as invalid without throwing', () => {
    const { domains, collector } = host();
    expect(() => domains.ratchetService.emit(RATCHET_STATE_CHANGED, undefined)).not.toThrow();
    expect(() => domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, 5)).not.toThrow();
    expect(collector.coalescer.stats().invalid).toBe(2);
  });

  it('warns with a short description of what a malformed event held, bounded for huge payloads', () => {
    const warn = vi.fn();
    const domains = workspaceDomains();
    createEventCollector({
      store: syncStore(),
      logger: { warn },
      sources: workspaceSnapshotSources(domains),
    });
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, { id: 'ws-1', toState: 'READY' });
    const [context, message] = warn.mock.calls[0] as [{ got: string }, string];
    expect(message).toMatch(/action without a non-empty string workspaceId/);
    expect(message).toMatch(/workspaceId: `undefined` \(undefined\)/);
    expect(message).toMatch(
      /from the event \{ id: `"ws-1"` \(string\), toState: `"READY"` \(string\) \}/,
    );
    expect(context.got).toMatch(/^\{ workspaceId: `undefined`/);
    const huge = Object.fromEntries(
      Array.from({ length: 10_000 }, (_, i) => [`key${i}`, 'x'.repeat(1000)]),
    );
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, huge);
    const [, hugeMessage] = warn.mock.calls[1] as [unknown, string];
    expect(hugeMessage.length).toBeLessThan(600);
    expect(hugeMessage).toMatch(/a string of 1000 characters/);
  });

  it('detaches all six listeners on stop', async () => {
    const { domains, collector } = host();
    const counts = () =>
      Object.values(domains).reduce(
        (sum, emitter) =>
          sum + emitter.eventNames().reduce((n, e) => n + emitter.listenerCount(e), 0),
        0,
      );
    expect(counts()).toBe(6);
    await collector.stop();
    expect(counts()).toBe(0);
  });
});

describe('workspaceSnapshotSources options', () => {
  it('writes the events a host marks immediate at once, the others after the window', () => {
    const { domains, store } = host({ immediate: ['workspaceStateChanged'] });
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'NEW',
      toStatus: 'READY',
    });
    expect(storeArgs(store.upsert)).toEqual([
      ['ws-1', { status: 'READY' }, 'event:workspace_state_changed'],
    ]);
    domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromState: 'A',
      toState: 'B',
    });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(2);
  });

  it('extends an event’s fields from its payload, and replaces them where the host says', () => {
    const { domains, written } = host({
      fields: {
        prSnapshotUpdated: (event: PrSnapshotUpdatedEvent & { prUrl: string }, defaults) => ({
          ...defaults,
          prUrl: event.prUrl,
        }),
        workspaceStateChanged: (
          event: WorkspaceStateChangedEvent & { name: string; branchName: string },
        ) => ({ status: event.toStatus, name: event.name, branchName: event.branchName }),
      },
    });
    domains.prSnapshotService.emit(PR_SNAPSHOT_UPDATED, {
      workspaceId: 'ws-1',
      prNumber: 7,
      prState: 'OPEN',
      prCiStatus: null,
      prUrl: 'https://example.test/pr/7',
    });
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-2',
      fromStatus: 'NEW',
      toStatus: 'READY',
      name: 'fix login',
      branchName: 'fix/login',
    });
    expect(written()).toEqual([
      [
        'ws-1',
        { prNumber: 7, prState: 'OPEN', prCiStatus: null, prUrl: 'https://example.test/pr/7' },
        'event:pr_snapshot_updated',
      ],
      [
        'ws-2',
        { status: 'READY', name: 'fix login', branchName: 'fix/login' },
        'event:workspace_state_changed',
      ],
    ]);
  });

  it('still removes an archived workspace at once when its fields are mapped', () => {
    const { domains, store } = host({ fields: { workspaceStateChanged: () => ({ name: 'x' }) } });
    domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
      workspaceId: 'ws-1',
      fromStatus: 'READY',
      toStatus: 'ARCHIVED',
    });
    expect(store.remove).toHaveStoreCall('ws-1');
  });

  it('counts a field map that throws as an invalid event, never throwing into emit()', () => {
    const { domains, collector } = host({
      fields: {
        ratchetStateChanged: () => {
          throw new Error('map');
        },
      },
    });
    expect(() =>
      domains.ratchetService.emit(RATCHET_STATE_CHANGED, { workspaceId: 'ws-1', toState: 'B' }),
    ).not.toThrow();
    expect(collector.coalescer.stats().invalid).toBe(1);
  });
});

describe('workspaceSnapshotSources arguments', () => {
  const domains = () => workspaceDomains();
  const call = (d: unknown, options?: unknown) => () =>
    workspaceSnapshotSources(d as never, options as never);

  it('refuses a call without domains with an error that lists them', () => {
    expect(call(undefined)).toThrow(
      /Expected `domains` to be an object with workspaceStateMachine, prSnapshotService.*got `undefined`/,
    );
  });

  it('names a missing domain, and the misspelled key that was given instead', () => {
    const { ratchetService, ...rest } = domains();
    expect(call(rest)).toThrow(
      /`domains\.ratchetService` to be an emitter.*got `undefined` \(undefined\)$/,
    );
    expect(call({ ...rest, ratchetServce: ratchetService })).toThrow(
      /`domains\.ratchetService`.*\(found `ratchetServce`: misspelled\?\)/,
    );
    expect(call({ ...rest, ratchetService: {} })).toThrow(/`domains\.ratchetService`.*an object/);
  });

  it('accepts domains with more services than the five it uses', () => {
    expect(call({ ...domains(), billingService: new EventEmitter() })).not.toThrow();
  });

  it('refuses unknown options, immediate events it does not have, and malformed members', () => {
    expect(call(domains(), { immediat: [] })).toThrow(
      /Unknown option `options\.immediat` \(did you mean `immediate`\?\)/,
    );
    expect(call(domains(), { immediate: ['nope'] })).toThrow(
      /`options\.immediate\[0\]` to be one of workspaceStateChanged,.*got `"nope"`/,
    );
    expect(call(domains(), { immediate: ['workspaceStateChange'] })).toThrow(
      /did you mean `workspaceStateChanged`/,
    );
    expect(call(domains(), { immediate: 'workspaceStateChanged' })).toThrow(
      /`options\.immediate` to be an array/,
    );
    expect(call(domains(), { workspaceActive: 5 })).toThrow(/`options\.workspaceActive`/);
    expect(call(domains(), { fields: { ratchetStateChanged: 'x' } })).toThrow(
      /`options\.fields\.ratchetStateChanged` to be a function/,
    );
    expect(call(domains(), { fields: { ratchet: () => ({}) } })).toThrow(
      /Unknown option `options\.fields\.ratchet`/,
    );
    expect(call(domains(), 'fast')).toThrow(/`options` to be an object/);
  });
});
