/**
 * The simulated host domains, shared by the terminal demo and the live page: seeded
 * workspaces and bursts of related events at a steady rate, now and then an archive.
 */
import type { EventEmitter } from 'node:events';
import {
  PR_SNAPSHOT_UPDATED,
  RATCHET_STATE_CHANGED,
  RUN_SCRIPT_STATUS_CHANGED,
  WORKSPACE_ACTIVE,
  WORKSPACE_IDLE,
  WORKSPACE_STATE_CHANGED,
} from 'event-coalescer';

type Domains = Record<
  | 'workspaceStateMachine'
  | 'prSnapshotService'
  | 'ratchetService'
  | 'runScriptStateMachine'
  | 'workspaceActivityService',
  EventEmitter
>;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

export interface SimulationOptions {
  workspaces: number;
  /** Domain events per second, all workspaces together; 0 sends none. */
  rate: number;
  /** The host's reconciliation, which seeds each new workspace in the store. */
  seed(workspaceId: string): void;
  /** Told before each event is emitted (to count it, or time it). */
  onEvent?(workspaceId: string): void;
}

export function simulate(domains: Domains, options: SimulationOptions) {
  let next = 0;
  const live: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const seed = (): void => {
    const workspaceId = `ws-${String(++next).padStart(3, '0')}`;
    options.seed(workspaceId);
    live.push(workspaceId);
  };
  for (let i = 0; i < options.workspaces; i++) seed();

  const emitOne = (workspaceId: string): void => {
    options.onEvent?.(workspaceId);
    const roll = Math.random();
    if (roll < 0.2) {
      domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
        workspaceId,
        fromStatus: 'READY',
        toStatus: pick(['READY', 'PROVISIONING', 'RUNNING']),
      });
    } else if (roll < 0.4) {
      domains.prSnapshotService.emit(PR_SNAPSHOT_UPDATED, {
        workspaceId,
        prNumber: 100 + Math.floor(Math.random() * 50),
        prState: pick(['OPEN', 'MERGED']),
        prCiStatus: pick(['PENDING', 'PASSING', 'FAILING']),
      });
    } else if (roll < 0.6) {
      domains.ratchetService.emit(RATCHET_STATE_CHANGED, {
        workspaceId,
        fromState: 'IDLE',
        toState: pick(['IDLE', 'CHECKING', 'FIXING']),
      });
    } else if (roll < 0.75) {
      domains.runScriptStateMachine.emit(RUN_SCRIPT_STATUS_CHANGED, {
        workspaceId,
        fromStatus: 'IDLE',
        toStatus: pick(['RUNNING', 'IDLE', 'FAILED']),
      });
    } else {
      domains.workspaceActivityService.emit(pick([WORKSPACE_ACTIVE, WORKSPACE_IDLE]), {
        workspaceId,
      });
    }
  };

  const burst = (): void => {
    const workspaceId = pick(live);
    if (Math.random() < 0.02) {
      // Archived: removed at once, and a new workspace takes its place.
      options.onEvent?.(workspaceId);
      live.splice(live.indexOf(workspaceId), 1);
      domains.workspaceStateMachine.emit(WORKSPACE_STATE_CHANGED, {
        workspaceId,
        fromStatus: 'READY',
        toStatus: 'ARCHIVED',
      });
      seed();
      return;
    }
    const size = 1 + Math.floor(Math.random() * 5);
    for (let i = 0; i < size; i++) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopped && live.includes(workspaceId)) emitOne(workspaceId);
      }, i * 5);
      timers.add(timer);
    }
  };

  // Bursts average three events each.
  const burstsPerTick = options.rate / 3 / 100;
  let owed = 0;
  const ticker =
    options.rate > 0
      ? setInterval(() => {
          owed += burstsPerTick;
          for (; owed >= 1; owed--) burst();
        }, 10)
      : undefined;

  return {
    pick: () => pick(live),
    stop(): void {
      stopped = true;
      if (ticker !== undefined) clearInterval(ticker);
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
