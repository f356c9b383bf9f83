import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../lib/app';
import { ALARM_METRICS, countAlarmMetric } from '../../functions/commons/metrics';

/** The alarms of the stack watch exactly the metric the functions emit (Template.fromStack: the cheap synth). */
describe('alarms', () => {
  it('ChannelResultMismatch: any refused channel result in 5 minutes alarms, on the metric countAlarmMetric emits', () => {
    // Prepare: what a function of the dev stage writes when it refuses a result (EMF on stdout).
    const { stack } = buildApp({ stage: 'dev', bundling: false });
    const alarms = Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm');
    const lines: string[] = [];
    vi.stubEnv('STAGE', 'dev');
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    // Act
    countAlarmMetric(ALARM_METRICS.channelResultMismatch);
    spy.mockRestore();
    vi.unstubAllEnvs();
    // Assess
    const emf = JSON.parse(lines.find((l) => l.includes('ChannelResultMismatch'))!);
    const [directive] = emf._aws.CloudWatchMetrics;
    const alarm = Object.values(alarms).map((a) => a.Properties).find((p) => p.MetricName === 'ChannelResultMismatch');
    expect(alarm).toMatchObject({
      Namespace: directive.Namespace,
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    // CloudWatch matches a metric by its exact dimension set: the alarm's must be the one the EMF line declares.
    const dims = Object.fromEntries(alarm.Dimensions.map((d: { Name: string; Value: string }) => [d.Name, d.Value]));
    expect(Object.keys(dims).sort()).toEqual([...directive.Dimensions[0]].sort());
    for (const [name, value] of Object.entries(dims)) expect(emf[name], name).toBe(value);
  });
});
