import { describe, expect, it } from 'vitest';
import { availableAt, availableBefore, businessDay, dayBounds, startOfBusinessDay } from '../../functions/settlements/calendar';
describe('cal', () => {
  it('works', () => {
    expect(startOfBusinessDay(new Date('2026-12-01T15:00:00Z')).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(startOfBusinessDay(new Date('2026-12-01T15:00:00Z'), 'Asia/Shanghai').toISOString()).toBe('2026-11-30T16:00:00.000Z');
    expect(dayBounds('2026-03-08', 'America/New_York')).toEqual({ start: new Date('2026-03-08T05:00:00Z'), end: new Date('2026-03-09T04:00:00Z') });
    expect(businessDay(new Date('2026-11-30T16:00:00Z'), 'Asia/Shanghai')).toBe('2026-12-01');
    expect(availableAt(new Date('2026-12-01T15:00:00Z'), 1).toISOString()).toBe('2026-12-02T00:00:00.000Z');
    expect(availableBefore(new Date('2026-12-02T00:00:00Z'), 1).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(availableBefore(new Date('2026-12-02T00:00:01Z'), 1).toISOString()).toBe('2026-12-02T00:00:00.000Z');
    // brute check
    for (const zone of ['UTC', 'America/New_York', 'Asia/Shanghai', 'America/Santiago']) for (let d = 0; d < 4; d++) for (let i = 0; i < 300; i++) {
      const at = new Date(Date.UTC(2026, 2, 1) + Math.floor(Math.random() * 40 * 86400e3));
      const c = new Date(at.getTime() - Math.floor(Math.random() * 6 * 86400e3));
      const bound = availableBefore(at, d, zone);
      expect(availableAt(c, d, zone) < at, `${zone} ${d} ${at.toISOString()} ${c.toISOString()}`).toBe(c < bound);
    }
  });
});
