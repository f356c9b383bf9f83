import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalIam } from '../../local/iam';
import type { InvokeResult, LambdaRuntime } from '../../local/lambda';
import { nextFireTime, Scheduler, schedulerSchedules } from '../../local/schedules';
import { LocalStepFunctions } from '../../local/stepfunctions';
import { LocalStack } from '../../local/template';
import { testTemplate } from './settlement-machine';

/**
 * The settlement schedule of the synthesized template (test stage), as the local cloud runs it: read by
 * local/schedules.ts schedulerSchedules, fired by the Scheduler's own timer at 00:30 UTC (the clock faked to a moment
 * before), in the schedule role's name, which local IAM checks for states:StartExecution on the state machine. The
 * steps are stubbed (a run with no merchant accounts): this is about the schedule, not the settling.
 */
afterEach(() => {
  vi.useRealTimers();
});

function world() {
  const stack = new LocalStack(structuredClone(testTemplate().json), { stackName: 'Payplane-test' });
  const iam = new LocalIam(stack, { mode: 'enforce', log: () => {} });
  const sfn = new LocalStepFunctions(stack, { iam });
  const calls: { logicalId: string; payload: any }[] = [];
  sfn.bindInvoker(async (logicalId, payload): Promise<InvokeResult> => {
    calls.push({ logicalId, payload });
    const p = payload as { run?: { cutoff?: string }; run_id?: string };
    const out = logicalId.startsWith('SettlementPrepare') ? { cutoff: new Date().toISOString(), run_id: p.run_id, items: [] } : { settlements: 0 };
    return { ok: true, payload: out, requestId: 'r', durationMs: 1 };
  });
  const rule = schedulerSchedules(stack).find((r) => r.logicalId.startsWith('SettlementSchedule'))!;
  return { stack, iam, sfn, calls, rule };
}

describe('the settlement schedule in the local cloud', () => {
  it('is read from the template: daily at 00:30 UTC, targeting the state machine in its own role', () => {
    const { rule, sfn } = world();
    const machine = [...sfn.machines.values()].find((m) => m.logicalId.startsWith('SettlementStateMachine'))!;
    expect(rule).toMatchObject({ expression: 'cron(30 0 * * ? *)', timeZone: 'UTC', enabled: true, source: 'scheduler' });
    expect(rule.targets).toEqual([expect.objectContaining({ stateMachineArn: machine.arn, roleArn: expect.stringMatching(/role\/.*SettlementScheduleRole/) })]);
    expect(nextFireTime(rule, new Date('2026-12-02T05:00:00Z'))!.toISOString()).toBe('2026-12-03T00:30:00.000Z');
  });

  it('fires by itself at 00:30 and starts a run with no cutoff, in the schedule role\'s name', async () => {
    const { rule, sfn, iam, calls } = world();
    vi.useFakeTimers({ now: new Date('2026-12-03T00:29:59.000Z'), toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const scheduler = new Scheduler([rule], {} as LambdaRuntime, { account: '000000000000', region: 'us-east-1', iam, stepFunctions: sfn });
    scheduler.start();
    expect(sfn.executions.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1_500);
    vi.useRealTimers();
    // The fire checks the role (asynchronously) before it starts the execution.
    for (let i = 0; i < 100 && sfn.executions.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const [execution] = [...sfn.executions.values()];
    expect(execution).toMatchObject({ startedBy: `schedule:${rule.logicalId}` });
    await sfn.waitFor(execution!.executionArn);
    await scheduler.stop();
    expect(execution!.status, `${execution!.error} ${execution!.cause}`).toBe('SUCCEEDED');
    expect(JSON.parse(execution!.input)).toEqual({ source: 'schedule' });
    expect(calls[0]!.payload).toEqual({ run: { source: 'schedule' }, run_id: execution!.name });
    // The role may start this state machine, and nothing else was asked of it.
    const role = Object.entries(iam.report().principals).find(([name]) => name.startsWith('SettlementScheduleRole'))!;
    expect(role[1].refusals).toEqual([]);
  });
});
