import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AttributeType } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { PayplaneTable } from '../../lib/constructs/payplane-table';
import { Settlement, EXECUTION_TIMEOUT, MERCHANT_NEGATIVE_BALANCE_METRIC, PAYOUT_RETRY, SETTLE_CONCURRENCY } from '../../lib/constructs/settlement';
import { stateMachinesOf } from '../../local/stepfunctions';
import { LocalStack, type CfnTemplate } from '../../local/template';
import { assertStateMachinesRunLocally } from './asl';
import { actionsOf, cleanUp, logicalId, synth, type Statement } from './template';

/**
 * Issue 10 §2: the settlement state machine, its schedule, roles and alarms as synthesized (dev; the test stage
 * only where it differs). The definition is read as the local cloud reads it (intrinsics resolved).
 */
afterAll(cleanUp);
const s = () => synth('dev');
const resources = () => s().template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any>; DependsOn?: string[] }>;
const settlement = () => s().stack.settlement;
type State = Record<string, any>;
const definition = (): { StartAt: string; States: Record<string, State>; TimeoutSeconds?: number } => {
  const stack = new LocalStack(structuredClone(s().template.toJSON()) as CfnTemplate, { stackName: 'Payplane-dev' });
  const machine = stateMachinesOf(stack).find((m) => m.logicalId === logicalId(settlement().stateMachine))!;
  return machine.definition as never;
};
const inner = () => definition().States.EachAccount!.ItemProcessor as { StartAt: string; States: Record<string, State> };
const fnArn = (id: keyof ReturnType<typeof settlement>['functions']) => `arn:aws:lambda:us-east-1:000000000000:function:Payplane-dev-${logicalId(settlement().functions[id].fn)}`;
const statementsOf = (roleLogicalId: string): Statement[] =>
  Object.values(resources())
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleLogicalId}"`))
    .flatMap((r) => r.Properties.PolicyDocument.Statement as Statement[]);

describe('settlement state machine', () => {
  it('is valid ASL and uses nothing aws-local-stepfunctions lacks (no Distributed Map, JSONata or variables)', () => {
    expect(() => assertStateMachinesRunLocally(s().template.toJSON() as CfnTemplate)).not.toThrow();
    const machine = resources()[logicalId(settlement().stateMachine)]!;
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(definition().TimeoutSeconds).toBe(EXECUTION_TIMEOUT.toSeconds());
  });

  it('Prepare → EachAccount (inline Map over $.items, MaxConcurrency 4, ResultPath null) → More pages? → Prepare | Summary', () => {
    const d = definition();
    expect(d.StartAt).toBe('Prepare');
    expect(d.States.Prepare).toMatchObject({ Type: 'Task', Resource: fnArn('SettlementPrepare'), Parameters: { 'run.$': '$', 'run_id.$': '$$.Execution.Name' }, Next: 'EachAccount' });
    expect(d.States.EachAccount).toMatchObject({ Type: 'Map', ItemsPath: '$.items', MaxConcurrency: SETTLE_CONCURRENCY, ResultPath: null, Next: 'More pages?' });
    expect(d.States.EachAccount!.ItemProcessor.ProcessorConfig?.Mode ?? 'INLINE').toBe('INLINE');
    expect(d.States['More pages?']).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.next', IsPresent: true, Next: 'Prepare' }], Default: 'Summary' });
    expect(d.States.Summary).toMatchObject({ Type: 'Task', Resource: fnArn('SettlementSummary'), Parameters: { 'cutoff.$': '$.cutoff', 'run_id.$': '$$.Execution.Name' }, End: true });
  });

  it('per account: Settle loops while done is false; only an in_payout settlement is paid; every settlement is reported', () => {
    const st = inner().States;
    expect(inner().StartAt).toBe('Settle');
    expect(st.Settle).toMatchObject({ Type: 'Task', Resource: fnArn('SettlementSettle'), Next: 'Settled?' });
    expect(st['Settled?']).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.done', BooleanEquals: false, Next: 'Settle' }], Default: 'Settlement made?' });
    expect(st['Settlement made?']).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.settlement_id', IsPresent: true, Next: 'Pay?' }], Default: 'AccountDone' });
    expect(st['Pay?']).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.status', StringEquals: 'in_payout', Next: 'Payout' }], Default: 'Report' });
    expect(st.Report).toMatchObject({ Resource: fnArn('SettlementReport'), Parameters: { 'settlement_id.$': '$.settlement_id' }, ResultPath: null, Next: 'AccountDone' });
    // The iteration's result is {}: the Map's result array stays small whatever the page holds.
    expect(st.AccountDone).toEqual({ Type: 'Pass', Parameters: {}, End: true });
  });

  it('Payout retries PayoutTransientError with backoff (4 attempts), then any error is caught into Compensate → Report', () => {
    const st = inner().States;
    expect(st.Payout).toMatchObject({ Resource: fnArn('SettlementPayout'), Parameters: { 'settlement_id.$': '$.settlement_id' }, ResultPath: '$.payout', Next: 'Report' });
    expect(st.Payout!.Retry).toContainEqual({ ErrorEquals: ['PayoutTransientError'], IntervalSeconds: PAYOUT_RETRY.interval.toSeconds(), BackoffRate: 2, MaxAttempts: 3 });
    expect(st.Payout!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Compensate' }]);
    expect(st.Compensate).toMatchObject({ Resource: fnArn('SettlementCompensate'), Parameters: { 'settlement_id.$': '$.settlement_id', 'error.$': '$.error' }, ResultPath: '$.payout', Next: 'Report' });
  });

  it('every Task waits at most its function timeout plus 30 s', () => {
    const tasks = [...Object.entries(definition().States), ...Object.entries(inner().States)].filter(([, st]) => st.Type === 'Task');
    expect(tasks.map(([name]) => name).sort()).toEqual(['Compensate', 'Payout', 'Prepare', 'Report', 'Settle', 'Summary']);
    for (const [name, st] of tasks) {
      const fn = settlement().functions[`Settlement${name}` as keyof ReturnType<typeof settlement>['functions']];
      expect(st.Resource, name).toBe(fnArn(`Settlement${name}` as never));
      expect(st.TimeoutSeconds, name).toBe(resources()[logicalId(fn.fn)]!.Properties.Timeout + 30);
    }
  });

  it('logs ALL events to its own log group without execution data, and traces with X-Ray', () => {
    const p = resources()[logicalId(settlement().stateMachine)]!.Properties;
    expect(p.LoggingConfiguration).toEqual({
      Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalId(settlement().logGroup), 'Arn'] } } }],
      IncludeExecutionData: false,
      Level: 'ALL',
    });
    expect(p.TracingConfiguration).toEqual({ Enabled: true });
  });

  it('the execution role may invoke the six step functions (no version wildcards), deliver logs and write traces: nothing else', () => {
    const role = resources()[logicalId(settlement().role)]!;
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'states.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '000000000000' } } },
    ]);
    const statements = statementsOf(logicalId(settlement().role));
    const invoke = statements.filter((st) => actionsOf(st).includes('lambda:InvokeFunction'));
    expect(invoke).toHaveLength(1);
    expect(actionsOf(invoke[0]!)).toEqual(['lambda:InvokeFunction']);
    expect(invoke[0]!.Resource).toEqual(Object.values(settlement().functions).map((f) => ({ 'Fn::GetAtt': [logicalId(f.fn), 'Arn'] })));
    for (const st of statements.filter((x) => x !== invoke[0])) {
      expect(st.Resource).toBe('*');
      expect(actionsOf(st).every((a) => a.startsWith('logs:') || a.startsWith('xray:')), JSON.stringify(st)).toBe(true);
    }
  });

  it('no other role may invoke the step functions; only the schedule and the operator\'s settlement run may start executions', () => {
    const arns = new Set(Object.values(settlement().functions).map((f) => logicalId(f.fn)));
    const starters = [logicalId(settlement().scheduleRole), logicalId(s().stack.functions.OperatorSettlements.role)];
    for (const [id, r] of Object.entries(resources())) {
      if (r.Type !== 'AWS::IAM::Policy' || JSON.stringify(r.Properties.Roles).includes(`"${logicalId(settlement().role)}"`)) continue;
      for (const st of r.Properties.PolicyDocument.Statement as Statement[]) {
        if (actionsOf(st).includes('lambda:InvokeFunction')) expect([...arns].some((a) => JSON.stringify(st.Resource).includes(a)), id).toBe(false);
        if (actionsOf(st).includes('states:StartExecution')) expect(starters, id).toEqual(expect.arrayContaining(r.Properties.Roles.map((role: { Ref: string }) => role.Ref)));
        if (actionsOf(st).includes('states:StartExecution')) expect(st.Resource, id).toEqual({ Ref: logicalId(settlement().stateMachine) });
      }
    }
  });
});

describe('settlement schedule', () => {
  it('EventBridge Scheduler starts the state machine daily at 00:30 UTC, with no cutoff in the input', () => {
    const p = resources()[logicalId(settlement().schedule)]!.Properties;
    expect(p).toMatchObject({ ScheduleExpression: 'cron(30 0 * * ? *)', ScheduleExpressionTimezone: 'UTC', State: 'ENABLED', FlexibleTimeWindow: { Mode: 'OFF' } });
    expect(p.Target).toMatchObject({
      Arn: { Ref: logicalId(settlement().stateMachine) },
      RoleArn: { 'Fn::GetAtt': [logicalId(settlement().scheduleRole), 'Arn'] },
      RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 },
    });
    expect(JSON.parse(p.Target.Input)).toEqual({ source: 'schedule' });
  });

  it('its role may only start executions of this state machine', () => {
    const role = resources()[logicalId(settlement().scheduleRole)]!;
    expect(role.Properties.AssumeRolePolicyDocument.Statement[0]).toMatchObject({ Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '000000000000' } } });
    expect(statementsOf(logicalId(settlement().scheduleRole))).toEqual([{ Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: logicalId(settlement().stateMachine) } }]);
  });

  it('a deploy-time time and zone replace the default', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'S', { env: { account: '000000000000', region: 'us-east-1' } });
    const key = new Key(stack, 'K');
    const table = new PayplaneTable(stack, 'T', {
      stage: 'dev',
      variable: 'TABLE_NAME',
      encryptionKey: key,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      globalSecondaryIndexes: ['gsi1', 'gsi2'].map((indexName) => ({ indexName, partitionKey: { name: `${indexName}pk`, type: AttributeType.STRING }, sortKey: { name: `${indexName}sk`, type: AttributeType.STRING } })),
    });
    new Settlement(stack, 'Settlement', { stage: 'dev', table, key, schedule: { expression: 'cron(0 2 * * ? *)', timeZone: 'Asia/Shanghai' } });
    Template.fromStack(stack).hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'cron(0 2 * * ? *)', ScheduleExpressionTimezone: 'Asia/Shanghai' });
  });
});

describe('settlement alarms', () => {
  const alarm = (id: string) => resources()[logicalId(settlement().node.findChild(id))]!.Properties;
  it.each(['ExecutionsFailed', 'ExecutionsTimedOut'])('%s of the state machine: any in 5 minutes alarms', (metric) => {
    expect(alarm(`${metric}Alarm`)).toMatchObject({
      Namespace: 'AWS/States',
      MetricName: metric,
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalId(settlement().stateMachine) } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('MerchantNegativeBalance: the settlement metric, with the dimensions of the stack\'s alarm metrics', () => {
    expect(alarm('MerchantNegativeBalanceAlarm')).toMatchObject({
      Namespace: 'Payplane',
      MetricName: MERCHANT_NEGATIVE_BALANCE_METRIC,
      Dimensions: [
        { Name: 'service', Value: 'payplane' },
        { Name: 'stage', Value: 'dev' },
      ],
      Statistic: 'Sum',
      Threshold: 1,
    });
  });
});
