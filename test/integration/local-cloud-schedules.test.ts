import { describe, expect, it } from 'vitest';
import type { InvokeResult, LambdaRuntime } from '../../local/lambda';
import { nextCronTime, nextCronTimeIn, nextFireTime, parseCron, parseSchedule, scheduledEvent, Scheduler, schedulerSchedules, type ScheduleRule } from '../../local/schedules';
import { LocalStack } from '../../local/template';

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

describe('Scheduler: the time scale divides rate() periods', () => {
  it('fires rate(1 hour) every 100 ms at time scale 36 000, with the Scheduled Event', async () => {
    // Prepare: a runtime that records what the rule invokes (the scheduler's side only).
    const fired: { at: number; event: Record<string, unknown> }[] = [];
    const runtime = {
      get: () => ({ definition: { arn: 'arn:aws:lambda:us-east-1:000000000000:function:Target' } }),
      invoke: async (_id: string, event: unknown): Promise<InvokeResult> => {
        fired.push({ at: Date.now(), event: event as Record<string, unknown> });
        return { ok: true, payload: null, requestId: 'r', durationMs: 0 };
      },
    } as unknown as LambdaRuntime;
    const rule: ScheduleRule = {
      logicalId: 'HourlyRule',
      name: 'hourly',
      arn: 'arn:aws:events:us-east-1:000000000000:rule/hourly',
      expression: 'rate(1 hour)',
      schedule: parseSchedule('rate(1 hour)'),
      enabled: true,
      targets: [{ id: 't', functionLogicalId: 'Target' }],
    };
    const scheduler = new Scheduler([rule], runtime, { account: '000000000000', region: 'us-east-1', timeScale: 36_000 });
    // Act
    const started = Date.now();
    scheduler.start();
    while (fired.length < 3) await new Promise((r) => setTimeout(r, 20));
    await scheduler.stop();
    // Assess: three periods of 3 600 s / 36 000 = 100 ms each have passed (never sooner).
    expect(fired[2]!.at - started).toBeGreaterThanOrEqual(290);
    expect(fired[0]!.event).toMatchObject({ 'detail-type': 'Scheduled Event', resources: [rule.arn] });
  });
});

describe('EventBridge Scheduler cron() in a time zone', () => {
  const daily2am = parseCron('0 2 * * ? *');
  it('fires at 02:00 Asia/Shanghai (UTC+8, no daylight saving time) = 18:00 UTC the day before', () => {
    expect(nextCronTimeIn(daily2am, new Date('2026-03-06T10:00:00Z'), 'Asia/Shanghai')!.toISOString()).toBe('2026-03-06T18:00:00.000Z');
    expect(nextCronTimeIn(daily2am, new Date('2026-03-06T18:00:00Z'), 'Asia/Shanghai')!.toISOString()).toBe('2026-03-07T18:00:00.000Z');
    expect(nextCronTimeIn(parseCron('30 9 ? * MON *'), new Date('2026-07-01T00:00:00Z'), 'Asia/Shanghai')!.toISOString()).toBe('2026-07-06T01:30:00.000Z');
  });

  it('follows daylight saving time in America/New_York: skips the 02:00 the spring change removes, fires once in the fall overlap', () => {
    // EST (UTC-5) before 8 March 2026, EDT (UTC-4) after.
    expect(nextCronTimeIn(parseCron('0 9 * * ? *'), new Date('2026-03-06T15:00:00Z'), 'America/New_York')!.toISOString()).toBe('2026-03-07T14:00:00.000Z');
    expect(nextCronTimeIn(parseCron('0 9 * * ? *'), new Date('2026-03-08T00:00:00Z'), 'America/New_York')!.toISOString()).toBe('2026-03-08T13:00:00.000Z');
    // 02:30 does not exist on 8 March: the next run is on the 9th (EDT).
    expect(nextCronTimeIn(parseCron('30 2 * * ? *'), new Date('2026-03-07T08:00:00Z'), 'America/New_York')!.toISOString()).toBe('2026-03-09T06:30:00.000Z');
    // 01:30 happens twice on 1 November (EDT, then EST): once, at the first.
    const first = nextCronTimeIn(parseCron('30 1 * * ? *'), new Date('2026-11-01T04:00:00Z'), 'America/New_York')!;
    expect(first.toISOString()).toBe('2026-11-01T05:30:00.000Z');
    expect(nextCronTimeIn(parseCron('30 1 * * ? *'), first, 'America/New_York')!.toISOString()).toBe('2026-11-02T06:30:00.000Z');
  });

  it('reads an AWS::Scheduler::Schedule: time zone, templated state machine target, role; refuses an unknown zone', () => {
    const resources = (zone: string) => ({
      Role: { Type: 'AWS::IAM::Role', Properties: {} },
      Machine: { Type: 'AWS::StepFunctions::StateMachine', Properties: { DefinitionString: '{}', RoleArn: 'x' } },
      Nightly: {
        Type: 'AWS::Scheduler::Schedule',
        Properties: {
          ScheduleExpression: 'cron(0 2 * * ? *)',
          ScheduleExpressionTimezone: zone,
          FlexibleTimeWindow: { Mode: 'OFF' },
          Target: { Arn: { Ref: 'Machine' }, RoleArn: { 'Fn::GetAtt': ['Role', 'Arn'] }, Input: '{"cutoff":"<aws.scheduler.scheduled-time>"}' },
        },
      },
    });
    const [nightly] = schedulerSchedules(new LocalStack({ Resources: resources('Asia/Shanghai') }, { stackName: 'S' }));
    expect(nightly).toMatchObject({
      source: 'scheduler',
      timeZone: 'Asia/Shanghai',
      enabled: true,
      arn: 'arn:aws:scheduler:us-east-1:000000000000:schedule/default/S-Nightly',
      targets: [{ stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:S-Machine', roleArn: 'arn:aws:iam::000000000000:role/S-Role' }],
    });
    expect(nextFireTime(nightly!, new Date('2026-03-06T10:00:00Z'))!.toISOString()).toBe('2026-03-06T18:00:00.000Z');
    expect(() => schedulerSchedules(new LocalStack({ Resources: resources('Mars/Olympus') }, { stackName: 'S' }))).toThrow(/not an IANA time zone/);
  });
});
