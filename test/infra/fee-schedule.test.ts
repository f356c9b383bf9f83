import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp, optionsFromContext } from '../../lib/app';
import type { FunctionId } from '../../lib/payplane-stack';
import { logicalId } from './template';

/** Whoever charges fees: confirm (API and hosted checkout), capture, channel results (notify, reconciliation). */
const CHARGES_FEES: FunctionId[] = ['ConfirmOrder', 'Checkout', 'CaptureOrder', 'SandboxNotify', 'ReconcilePayments' as FunctionId];

/** FEE_SCHEDULE of every function. Template.fromStack without cdk-nag or bundling: the cheap synth. */
function feeScheduleEnv(feeSchedule?: Parameters<typeof buildApp>[0]['feeSchedule']): Record<string, unknown> {
  const { stack } = buildApp({ stage: 'dev', bundling: false, feeSchedule });
  const resources = Template.fromStack(stack).toJSON().Resources;
  return Object.fromEntries(
    Object.entries(stack.functions).map(([id, fn]) => [id, resources[logicalId(fn.fn)].Properties.Environment.Variables.FEE_SCHEDULE]),
  );
}

describe('platform fee schedule', () => {
  it('-c feeSchedule reaches exactly the functions that charge fees, as FEE_SCHEDULE (normalized JSON)', () => {
    // Prepare
    const options = optionsFromContext({ stage: 'dev', feeSchedule: ' {"card": {"percent_bps": 250}, "wallet": {"fixed": 10}} ' }, {});
    // Act
    const env = feeScheduleEnv(options.feeSchedule);
    // Assess
    const expected = '{"card":{"percent_bps":250},"wallet":{"fixed":10}}';
    for (const [id, value] of Object.entries(env)) expect(value, id).toBe(CHARGES_FEES.includes(id as FunctionId) ? expected : undefined);
    expect(Object.values(env).filter(Boolean).length).toBeGreaterThanOrEqual(4);
  });

  it('no FEE_SCHEDULE anywhere when nothing is configured (the functions use DEFAULT_FEE_SCHEDULE)', () => {
    expect(optionsFromContext({ stage: 'dev' }, {})).not.toHaveProperty('feeSchedule');
    expect(Object.values(feeScheduleEnv()).filter((v) => v !== undefined)).toEqual([]);
  });

  it('a bad value fails synth, naming the value and the fix', () => {
    expect(() => optionsFromContext({ feeSchedule: '{"card":{"percent_bps":"2.5%"}}' }, {})).toThrow(
      /^Context 'feeSchedule' .*2\.5%.* is not a valid fee schedule\. Fee schedule field 'card\.percent_bps' is invalid: .* Fix it, e\.g\. -c feeSchedule='/,
    );
    expect(() => optionsFromContext({ feeSchedule: 'card=250' }, {})).toThrow(`Context 'feeSchedule' is not JSON: got "card=250"`);
    expect(() => buildApp({ stage: 'dev', bundling: false, feeSchedule: { card: { percent_bps: -1 } } })).toThrow(/card\.percent_bps.*got -1/);
  });
});
