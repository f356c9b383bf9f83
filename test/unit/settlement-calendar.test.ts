import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addBusinessDays,
  availableAt,
  availableBefore,
  businessDay,
  businessTimeZone,
  dayBounds,
  MAX_DELAY_DAYS,
  startOfBusinessDay,
} from '../../functions/settlements/calendar';
import { runs } from '../deep';

/**
 * The business-day calendar (functions/settlements/calendar.ts). Settlement and the balance rely on one equivalence:
 * the entries available before an instant are exactly those created before availableBefore(it), so a window
 * `[from, availableBefore(cutoff))` of the entry index is what a run may take. Zones: UTC; New York (DST at 02:00);
 * Shanghai (UTC+8, no DST); Santiago (DST at midnight: a day without 00:00, and one with it twice); Lord Howe
 * (a 30-minute DST shift).
 */
const ZONES = ['UTC', 'America/New_York', 'Asia/Shanghai', 'America/Santiago', 'Australia/Lord_Howe'] as const;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FROM = Date.UTC(2025, 11, 1);
const TO = Date.UTC(2028, 0, 31);
const iso = (ms: number) => new Date(ms).toISOString();
/** Intl time-zone arithmetic is ~0.3 ms a case: the deep figures need minutes, and CI's 2 shared cores some slack. */
const TIMEOUT = runs(30_000, 600_000);

const zone = fc.constantFrom(...ZONES);
const delay = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: MAX_DELAY_DAYS }));
/** Any instant, or one within a second (or an hour) of a business-day boundary in the zone: where the bugs are. */
const instant = (z: string) =>
  fc.oneof(
    fc.integer({ min: FROM, max: TO }),
    fc
      .tuple(fc.integer({ min: FROM, max: TO }), fc.constantFrom(0, 1, -1, 999, -1000, HOUR, -HOUR, HOUR / 2, -HOUR / 2))
      .map(([t, delta]) => startOfBusinessDay(new Date(t), z).getTime() + delta),
  );

describe('availableBefore (property)', () => {
  it('availableAt(c) < at ⟺ c < availableBefore(at), in every zone, for every delay 0–30', () => {
    fc.assert(
      fc.property(
        zone.chain((z) =>
          fc.record({
            z: fc.constant(z),
            d: delay,
            at: instant(z),
            // Created up to delay + 3 days before `at`, or a little after it.
            back: fc.oneof(fc.integer({ min: -2 * DAY, max: 34 * DAY }), fc.constantFrom(0, 1, -1, DAY, DAY + 1, DAY - 1)),
            snap: fc.boolean(),
          }),
        ),
        ({ z, d, at, back, snap }) => {
          // Half the time, the entry sits exactly on a business-day boundary too.
          const c = snap ? startOfBusinessDay(new Date(at - back), z).getTime() : at - back;
          const available = availableAt(new Date(c), d, z).getTime() < at;
          const before = c < availableBefore(new Date(at), d, z).getTime();
          expect(available, `${z} delay ${d}: created ${iso(c)}, at ${iso(at)}, available at ${iso(availableAt(new Date(c), d, z).getTime())}, bound ${iso(availableBefore(new Date(at), d, z).getTime())}`).toBe(before);
        },
      ),
      { numRuns: runs(2_000, 100_000) },
    );
  }, TIMEOUT);

  it('a business day starts at its own first instant and ends where the next starts, 23 to 25 hours later', () => {
    fc.assert(
      fc.property(zone, fc.integer({ min: FROM, max: TO }), (z, t) => {
        const day = businessDay(new Date(t), z);
        const { start, end } = dayBounds(day, z);
        expect(start.getTime()).toBeLessThanOrEqual(t);
        expect(t).toBeLessThan(end.getTime());
        expect(businessDay(start, z)).toBe(day);
        expect(businessDay(new Date(start.getTime() - 1), z)).not.toBe(day);
        expect(businessDay(new Date(end.getTime() - 1), z)).toBe(day);
        expect(end.getTime() - start.getTime()).toBeGreaterThanOrEqual(23 * HOUR);
        expect(end.getTime() - start.getTime()).toBeLessThanOrEqual(25 * HOUR);
        expect(addBusinessDays(start, 1, z)).toEqual(end);
      }),
      { numRuns: runs(1_000, 50_000) },
    );
  }, TIMEOUT);

  it('availability never comes before creation, and never moves earlier for a later entry or a longer delay', () => {
    fc.assert(
      fc.property(zone, fc.integer({ min: FROM, max: TO }), fc.nat({ max: 5 * DAY }), delay, (z, c, gap, d) => {
        const a = availableAt(new Date(c), d, z).getTime();
        expect(a).toBeGreaterThanOrEqual(c);
        expect(availableAt(new Date(c + gap), d, z).getTime()).toBeGreaterThanOrEqual(a);
        if (d < MAX_DELAY_DAYS) expect(availableAt(new Date(c), d + 1, z).getTime()).toBeGreaterThan(a);
      }),
      { numRuns: runs(1_000, 20_000) },
    );
  }, TIMEOUT);
});

describe('named cases', () => {
  it('T+1 in UTC: a capture at 15:00 is available at the next midnight, not a millisecond before', () => {
    const c = new Date('2026-12-01T15:00:00Z');
    expect(availableAt(c, 1).toISOString()).toBe('2026-12-02T00:00:00.000Z');
    // A cutoff exactly at midnight takes the days before it; that day's captures wait for the next cutoff.
    expect(availableBefore(new Date('2026-12-02T00:00:00Z'), 1).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(availableBefore(new Date('2026-12-02T00:00:00.001Z'), 1).toISOString()).toBe('2026-12-02T00:00:00.000Z');
    // Delay 0: available at once.
    expect(availableAt(c, 0)).toEqual(c);
    expect(availableBefore(c, 0)).toEqual(c);
    // Delay 30 crosses the month.
    expect(availableAt(c, 30).toISOString()).toBe('2026-12-31T00:00:00.000Z');
  });

  it('a Shanghai cutoff: the business day starts at 16:00 UTC the day before', () => {
    const z = 'Asia/Shanghai';
    expect(startOfBusinessDay(new Date('2026-12-01T15:00:00Z'), z).toISOString()).toBe('2026-11-30T16:00:00.000Z');
    expect(businessDay(new Date('2026-11-30T16:00:00Z'), z)).toBe('2026-12-01');
    // 23:59:59 local on 1 December: available one second later, at local midnight.
    expect(availableAt(new Date('2026-12-01T15:59:59Z'), 1, z).toISOString()).toBe('2026-12-01T16:00:00.000Z');
    // Local midnight on 2 December: a day later.
    expect(availableAt(new Date('2026-12-01T16:00:00Z'), 1, z).toISOString()).toBe('2026-12-02T16:00:00.000Z');
    // The daily run at 00:00 Shanghai on 3 December settles what was created before 00:00 on 2 December.
    expect(availableBefore(new Date('2026-12-02T16:00:00Z'), 1, z).toISOString()).toBe('2026-12-01T16:00:00.000Z');
  });

  it('a DST day of 23 hours (New York, 8 March 2026) and one of 25 (1 November 2026)', () => {
    const z = 'America/New_York';
    expect(dayBounds('2026-03-08', z)).toEqual({ start: new Date('2026-03-08T05:00:00Z'), end: new Date('2026-03-09T04:00:00Z') });
    expect(dayBounds('2026-11-01', z)).toEqual({ start: new Date('2026-11-01T04:00:00Z'), end: new Date('2026-11-02T05:00:00Z') });
    // Captured at noon on the short day: available at the next local midnight, 23 − 12 = 11 h later.
    expect(availableAt(new Date('2026-03-08T16:00:00Z'), 1, z).toISOString()).toBe('2026-03-09T04:00:00.000Z');
    expect(availableAt(new Date('2026-03-07T17:00:00Z'), 1, z).toISOString()).toBe('2026-03-08T05:00:00.000Z');
  });

  it('Santiago, where DST starts and ends at midnight: a day without 00:00 starts at 01:00, one with 00:00 twice at the second', () => {
    const z = 'America/Santiago';
    // 6 September 2026: 00:00 −04 jumps to 01:00 −03 (04:00 UTC either way).
    expect(dayBounds('2026-09-06', z).start.toISOString()).toBe('2026-09-06T04:00:00.000Z');
    expect(dayBounds('2026-09-06', z).end.toISOString()).toBe('2026-09-07T03:00:00.000Z');
    // 5 April 2026: 00:00 −03 falls back to 23:00 −04 on the 4th: the 4th has 25 hours, the 5th starts at 00:00 −04.
    expect(dayBounds('2026-04-04', z)).toEqual({ start: new Date('2026-04-04T03:00:00Z'), end: new Date('2026-04-05T04:00:00Z') });
  });

  it('reads the platform zone from BUSINESS_TIME_ZONE, UTC by default, and refuses a name that is none', () => {
    expect(businessTimeZone({})).toBe('UTC');
    expect(businessTimeZone({ BUSINESS_TIME_ZONE: ' Asia/Shanghai ' })).toBe('Asia/Shanghai');
    expect(() => businessTimeZone({ BUSINESS_TIME_ZONE: 'Mars/Olympus' })).toThrow(/BUSINESS_TIME_ZONE 'Mars\/Olympus' is not an IANA time zone; use e.g. UTC/);
    expect(() => availableAt(new Date(), 31)).toThrow(/delay_days 31 must be an integer from 0 to 30/);
    expect(() => dayBounds('2026-02-30')).toThrow(/'2026-02-30' is not a calendar date/);
  });
});
