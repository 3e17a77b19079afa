/**
 * Which refresh sources share their runs. Sources that name the same `group` share one; a
 * source that names none shares the runs of its `refresh` function — with the first named
 * group that uses that function, or else with the other unnamed sources of that function —
 * so that one function never reads one workspace twice at once for two sources.
 */
import type { Fields } from '../core/types.js';
import { type RefreshSource, sourceName } from './sources.js';

export interface RefreshGroup<F extends object = Fields> {
  /** The group's first source, in source order: its `refresh`, `retry` and `immediate` serve it. */
  first: RefreshSource<F>;
  /** What its writes are labelled: the group's name, or its first source's. */
  label: string;
}

/** Each refresh source's group, for sources already checked: `of(source)`. */
export function groupRefreshSources<F extends object>(
  sources: readonly RefreshSource<F>[],
): { of(source: RefreshSource<F>): RefreshGroup<F> } {
  const byName = new Map<string, RefreshGroup<F>>();
  const byFunction = new Map<RefreshSource<F>['refresh'], RefreshGroup<F>>();
  const groupOf = new Map<RefreshSource<F>, RefreshGroup<F>>();
  for (const source of sources) {
    if (source.group === undefined) continue;
    let group = byName.get(source.group);
    if (group === undefined) {
      group = { first: source, label: source.group };
      byName.set(source.group, group);
    }
    if (!byFunction.has(source.refresh)) byFunction.set(source.refresh, group);
    groupOf.set(source, group);
  }
  for (const source of sources) {
    if (source.group !== undefined) continue;
    let group = byFunction.get(source.refresh);
    if (group === undefined) {
      group = { first: source, label: sourceName(source) };
      byFunction.set(source.refresh, group);
    } else if (sources.indexOf(source) < sources.indexOf(group.first)) {
      // An unnamed source listed before its named group's first runs the group's reads.
      group.first = source;
    }
    groupOf.set(source, group);
  }
  return {
    of: (source) =>
      groupOf.get(source) ?? { first: source, label: source.group ?? sourceName(source) },
  };
}
