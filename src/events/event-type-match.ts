/**
 * Which `event_types` entries receive an event type. An entry matches when it is the type
 * itself, `*` (but not for the service's own `hookrelay.` types), or `<prefix>.*` where the type
 * starts with `<prefix>.` and goes on after it
 * (`invoice.*` matches `invoice.paid` and `invoice.paid.late`, not `invoice` itself).
 *
 * Matching is done in SQL as an array overlap: `webhooks.event_types && filtersMatching(type)`,
 * so the list below is every entry that matches, at most one per dot in the type plus two.
 */
import { isOperationalType } from './operational-events.js';

export function filtersMatching(type: string): string[] {
  // `*` is every type of the tenant's own; the service's operational events must be named.
  const filters = isOperationalType(type) ? [type] : [type, '*'];
  for (let i = type.indexOf('.'); i !== -1 && i < type.length - 1; i = type.indexOf('.', i + 1)) {
    filters.push(`${type.slice(0, i)}.*`);
  }
  return filters;
}

/** The same rule for one entry, for code and tests that hold a single filter. */
export function filterMatches(filter: string, type: string): boolean {
  if (filter === type) return true;
  if (filter === '*') return !isOperationalType(type);
  if (!filter.endsWith('.*')) return false;
  const prefix = filter.slice(0, -1);
  return type.length > prefix.length && type.startsWith(prefix);
}
