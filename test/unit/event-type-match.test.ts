import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { filterMatches, filtersMatching } from '../../src/events/event-type-match.js';

describe('event type matching', () => {
  it.each([
    ['invoice.paid', 'invoice.paid', true],
    ['invoice.paid', 'invoice.created', false],
    ['*', 'anything.at.all', true],
    ['invoice.*', 'invoice.paid', true],
    ['invoice.*', 'invoice.paid.late', true],
    ['invoice.*', 'invoice', false],
    ['invoice.*', 'invoices.paid', false],
    ['invoice.paid.*', 'invoice.paid', false],
    ['invoice.paid.*', 'invoice.paid.late', true],
    ['a.*', 'a..b', true],
    ['a..*', 'a..b', true],
    ['a.*', 'a.', false],
  ])('%s against %s: %s', (filter, type, expected) => {
    expect(filterMatches(filter, type)).toBe(expected);
    expect(filtersMatching(type).includes(filter)).toBe(expected);
  });

  it('lists the type itself, * and one prefix filter per inner dot', () => {
    expect(filtersMatching('a.b.c')).toEqual(['a.b.c', '*', 'a.*', 'a.b.*']);
    expect(filtersMatching('plain')).toEqual(['plain', '*']);
  });

  it('the SQL side (overlap with filtersMatching) agrees with filterMatches for any filter and type', () => {
    const segment = fc.stringMatching(/^[a-c_:-]{0,3}$/);
    const type = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.'));
    const filter = fc.oneof(
      type,
      fc.constant('*'),
      type.map((prefix) => `${prefix}.*`),
    );
    fc.assert(
      fc.property(filter, type, (f, t) => {
        fc.pre(/^[A-Za-z0-9_.:-]{1,128}$/.test(t));
        expect(filtersMatching(t).includes(f)).toBe(filterMatches(f, t));
      }),
      { numRuns: 2000 },
    );
  });
});
