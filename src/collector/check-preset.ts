/**
 * Checks the preset's arguments whole before any source is made: a missing or misspelled
 * domain, option or event is a `TypeError` (or `RangeError`) that names it.
 */
import { assertKnownKeys, expected, likelyMeant, numberOption } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { EMITTER_SHAPES } from './check-source.js';
import { isEmitterLike } from './emitter-adapter.js';

/** The preset's events, by the keys its options use. */
const EVENTS: readonly string[] = [
  'workspaceStateChanged',
  'prSnapshotUpdated',
  'ratchetStateChanged',
  'runScriptStatusChanged',
  'workspaceActive',
  'workspaceIdle',
];
/** The domains it subscribes to. */
const DOMAINS: readonly string[] = [
  'workspaceStateMachine',
  'prSnapshotService',
  'ratchetService',
  'runScriptStateMachine',
  'workspaceActivityService',
];
const OPTIONS = [...EVENTS, 'immediate', 'fields', 'windowMs', 'maxWaitMs'];

/** Throws a TypeError (or RangeError) that names what is missing, misspelled or malformed. */
export function checkPresetArguments(domains: unknown, options: unknown): void {
  if (domains === null || typeof domains !== 'object') {
    throw new TypeError(expected('domains', `an object with ${DOMAINS.join(', ')}`, domains));
  }
  const given = Object.keys(domains).filter((key) => !DOMAINS.includes(key));
  for (const key of DOMAINS) {
    const emitter = (domains as Record<string, unknown>)[key];
    if (isEmitterLike(emitter)) continue;
    const typo = emitter === undefined ? likelyMeant(key, given) : undefined;
    throw new TypeError(
      expected(`domains.${key}`, EMITTER_SHAPES, emitter) +
        (typo === undefined ? '' : ` (found \`${typo}\`: misspelled?)`),
    );
  }
  if (!isPlainObject(options)) throw new TypeError(expected('options', 'an object', options));
  assertKnownKeys('options', options, OPTIONS);
  for (const event of EVENTS) {
    const name = options[event];
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new TypeError(expected(`options.${event}`, 'an event name (string)', name));
    }
  }
  const { immediate, fields, windowMs, maxWaitMs } = options;
  if (immediate !== undefined) {
    if (!Array.isArray(immediate)) {
      throw new TypeError(
        expected('options.immediate', `an array of ${EVENTS.join(', ')}`, immediate),
      );
    }
    immediate.forEach((event: unknown, i) => {
      if (typeof event !== 'string' || !EVENTS.includes(event)) {
        const meant = typeof event === 'string' ? likelyMeant(event, EVENTS) : undefined;
        throw new TypeError(
          expected(`options.immediate[${i}]`, `one of ${EVENTS.join(', ')}`, event) +
            (meant === undefined ? '' : ` (did you mean \`${meant}\`?)`),
        );
      }
    });
  }
  if (fields !== undefined) {
    if (!isPlainObject(fields))
      throw new TypeError(expected('options.fields', 'an object', fields));
    assertKnownKeys('options.fields', fields, EVENTS);
    for (const [event, map] of Object.entries(fields)) {
      if (map !== undefined && typeof map !== 'function') {
        throw new TypeError(expected(`options.fields.${event}`, 'a function', map));
      }
    }
  }
  for (const [option, value, rule] of [
    ['windowMs', windowMs, 'duration'],
    ['maxWaitMs', maxWaitMs, 'bound'],
  ] as const) {
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      throw new TypeError(
        expected(`options.${option}`, 'an object of milliseconds by event', value),
      );
    }
    assertKnownKeys(`options.${option}`, value, EVENTS);
    for (const [event, ms] of Object.entries(value)) {
      numberOption(`options.${option}.${event}`, ms, 0, rule);
    }
  }
}
