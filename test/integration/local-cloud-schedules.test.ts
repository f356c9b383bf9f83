import { describe, expect, it } from 'vitest';
import { nextCronTime, parseCron, parseSchedule, scheduledEvent, type ScheduleRule } from '../../local/schedules';

describe('EventBridge schedule expressions', () => {
  it('parses rate() in minutes, hours and days, singular only for 1', () => {
    expect(parseSchedule('rate(1 minute)')).toEqual({ kind: 'rate', periodMs: 60_000 });
    expect(parseSchedule('rate(5 minutes)')).toEqual({ kind: 'rate', periodMs: 300_000 });
    expect(parseSchedule('rate(2 hours)')).toEqual({ kind: 'rate', periodMs: 7_200_000 });
    expect(parseSchedule('rate(1 day)')).toEqual({ kind: 'rate', periodMs: 86_400_000 });
    expect(() => parseSchedule('rate(1 minutes)')).toThrow(/not a valid rate/);
    expect(() => parseSchedule('rate(5 minute)')).toThrow(/not a valid rate/);
    expect(() => parseSchedule('every minute')).toThrow(/neither rate/);
  });

  it('computes the next cron time in UTC (steps, ranges, names, ? fields)', () => {
    const from = new Date('2026-03-06T10:07:30Z'); // a Friday
    const every5 = parseCron('0/5 * * * ? *');
    expect(nextCronTime(every5, from)!.toISOString()).toBe('2026-03-06T10:10:00.000Z');
    const weekdays = parseCron('0 8 ? * MON-FRI *');
    expect(nextCronTime(weekdays, from)!.toISOString()).toBe('2026-03-09T08:00:00.000Z');
    const firstOfMonth = parseCron('15 0 1 * ? *');
    expect(nextCronTime(firstOfMonth, from)!.toISOString()).toBe('2026-04-01T00:15:00.000Z');
    const sundays = parseCron('0 12 ? * 1 *');
    expect(nextCronTime(sundays, from)!.toISOString()).toBe('2026-03-08T12:00:00.000Z');
    const onlyIn2027 = parseCron('0 0 1 JAN ? 2027');
    expect(nextCronTime(onlyIn2027, from)!.toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('refuses malformed cron expressions with a reason', () => {
    expect(() => parseCron('* * * * *')).toThrow(/6 fields/);
    expect(() => parseCron('0 8 * * MON *')).toThrow(/exactly one of day-of-month and day-of-week/);
    expect(() => parseCron('0 8 L * ? *')).toThrow(/L, W or #/);
    expect(() => parseCron('61 8 * * ? *')).toThrow(/out of range/);
  });

  it('builds the Scheduled Event EventBridge sends', () => {
    const rule = { arn: 'arn:aws:events:us-east-1:000000000000:rule/r' } as ScheduleRule;
    const event = scheduledEvent(rule, '000000000000', 'us-east-1', new Date('2026-03-06T10:07:30.123Z'));
    expect(event).toMatchObject({
      version: '0',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      region: 'us-east-1',
      time: '2026-03-06T10:07:30Z',
      resources: ['arn:aws:events:us-east-1:000000000000:rule/r'],
      detail: {},
    });
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
