import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ALARM_METRICS, METRICS_NAMESPACE } from '../../functions/commons/metrics';
import { STAGE_SETTINGS, type Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import { PayplaneFunction, type PayplaneFunctionProps, type TableAccess } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

/** Counted by the Summary for each merchant whose carry has stayed below zero too long (functions/settlements/reconcile.ts). */
export const MERCHANT_NEGATIVE_BALANCE_METRIC = ALARM_METRICS.merchantNegativeBalance;

/** The payout's retries of PayoutTransientError: 2 s, 4 s, 8 s (4 attempts in all), then Compensate. */
export const PAYOUT_RETRY = { interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 3 } as const;
/** Merchant accounts settled at once (the Map's MaxConcurrency): each settles in one writer transaction per chunk. */
export const SETTLE_CONCURRENCY = 4;
/** A run that has not finished in this long is stopped (TIMED_OUT, alarmed): 100,000 entries take minutes. */
export const EXECUTION_TIMEOUT = Duration.hours(6);

export interface SettlementProps {
  readonly stage: Stage;
  /** The main table: merchants, accounts, transfers (entries), settlements, cursors, events, the sandbox's statements and payouts. */
  readonly table: PayplaneTable;
  /** The stack's key: merchants' bank accounts are sealed under it (opened by Payout only, purpose `bank_account`). */
  readonly key: IKey;
  /**
   * When the daily run starts: an EventBridge Scheduler expression and its IANA time zone.
   * @default - the stage's `settlementSchedule` (`cron(30 0 * * ? *)` in UTC: 00:30 every day)
   */
  readonly schedule?: { readonly expression: string; readonly timeZone: string };
}

/**
 * Settlement (issue 10 §2): a Standard state machine that settles every merchant account with unsettled entries,
 * pays the nets out and reconciles the run, and the daily EventBridge Scheduler schedule that starts it.
 *
 *   Prepare (a page of merchant accounts) ─▶ Map (inline, MaxConcurrency 4, ResultPath null), per account:
 *       Settle ◀─┐ (a chunk of entries per invocation; loops while done = false)
 *       Settled? ┘
 *       Settlement made? ── no ─▶ AccountDone
 *       Pay? ── in_payout ─▶ Payout (Retry PayoutTransientError: 2 s, 4 s, 8 s; 4 attempts) ─▶ Report ─▶ AccountDone
 *            │                 └─ Catch States.ALL ─▶ Compensate ─┘
 *            └─ any other status (paid, failed, carried_forward: a run again) ─▶ Report
 *   ─▶ More pages? ── next ─▶ Prepare …   otherwise ─▶ Summary (reconciliation; ReconciliationError fails the run)
 *
 * Task states name the functions' ARNs (payloadResponseOnly), so the local cloud runs the same definition
 * (local/stepfunctions.ts). Nothing travels through the state but ids and one page of accounts: Summary finds the
 * run's settlements itself (gsi2 RUN#<run id>), so the 256 KB state limit holds at any size. docs/settlement.md
 * (Orchestration) describes it and how each hard limit is kept. Construct ids are a contract.
 */
export class Settlement extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly schedule: scheduler.Schedule;
  readonly scheduleRole: iam.Role;
  readonly role: iam.Role;
  readonly logGroup: LogGroup;
  /** The steps that write through the ChangeWriter (settlement events), which renders events with PUBLIC_BASE_URL. */
  readonly writers: PayplaneFunction[];
  readonly functions: {
    SettlementPrepare: PayplaneFunction;
    SettlementSettle: PayplaneFunction;
    SettlementPayout: PayplaneFunction;
    SettlementCompensate: PayplaneFunction;
    SettlementReport: PayplaneFunction;
    SettlementSummary: PayplaneFunction;
  };

  constructor(scope: Construct, id: string, props: SettlementProps) {
    super(scope, id);
    const { stage, table, key } = props;
    const settings = STAGE_SETTINGS[stage];
    const lagSeconds = String(settings.settlementLag.toSeconds());

    // ── Functions (one per step; each reads and writes only what its step does) ──────────────────────
    const fn = (fid: string, entry: string, description: string, timeout: Duration, extra: Partial<PayplaneFunctionProps> = {}) =>
      new PayplaneFunction(this, fid, { stage, entry: `functions/handlers/${entry}`, description, timeout, ...extra });
    /** Settling: entries by merchant (gsi1), the merchant's payout settings, then one writer transaction. */
    const settles: TableAccess = { actions: ['GetItem', 'PutItem', 'UpdateItem'], indexes: ['gsi1'] };
    /** Resolving a payout: the settlement, its transfer and event, the sandbox payout channel's item. */
    const resolves: TableAccess = { actions: ['GetItem', 'PutItem', 'UpdateItem'] };

    const prepare = fn('Prepare', 'settlement-prepare.ts', 'Settlement: a page of merchant accounts to settle', Duration.seconds(60)) //
      .bindTable(table, { indexes: ['gsi2'] })
      // The run's settlement.run entry on the platform's audit chain (its head, the entry, the run's marker), nothing else.
      .bindTable(table, { actions: ['GetItem', 'PutItem'], onlyPartitions: ['AUDIT#platform'] });
    // A chunk stops at ~60 s or 20,000 entries (functions/settlements/settle.ts), far inside the timeout.
    const settle = fn('Settle', 'settlement-settle.ts', 'Settlement: settles one merchant account, a chunk of entries per invocation', Duration.minutes(3), {
      environment: { SETTLEMENT_LAG_SECONDS: lagSeconds },
    }).bindTable(table, settles);
    // Opens the merchant's bank account for the channel, and nothing else sealed under the key.
    const payout = fn('Payout', 'settlement-payout.ts', 'Settlement: pays a settlement out through the payout channel', Duration.seconds(60)) //
      .bindTable(table, resolves)
      .bindKey(key, 'decrypt', ['bank_account']);
    const compensate = fn('Compensate', 'settlement-compensate.ts', "Settlement: voids a failed payout's reserve (after asking the channel)", Duration.seconds(60)) //
      .bindTable(table, resolves);
    // functions/settlements/report.ts writeReport: the settlement, its entries (gsi1), their orders (merchant_order_no),
    // then one UpdateItem of its `report` digests.
    const report = fn('Report', 'settlement-report.ts', "Settlement: writes a settlement's report and its digests", Duration.minutes(10)) //
      .bindTable(table, { actions: ['GetItem', 'BatchGetItem', 'UpdateItem'], indexes: ['gsi1'] });
    const summary = fn('Summary', 'settlement-summary.ts', "Settlement: the run's totals and its reconciliation with the channels' statements", Duration.minutes(10), {
      // The same horizon as Settle's: the statement lines it compares stop where the windows do.
      environment: { SETTLEMENT_LAG_SECONDS: lagSeconds },
    }).bindTable(table, { actions: ['GetItem', 'BatchGetItem', 'Query'], indexes: ['gsi1', 'gsi2'] });
    this.writers = [settle, payout, compensate];
    this.functions = {
      SettlementPrepare: prepare,
      SettlementSettle: settle,
      SettlementPayout: payout,
      SettlementCompensate: compensate,
      SettlementReport: report,
      SettlementSummary: summary,
    };

    // ── The definition ───────────────────────────────────────────────────────────────────────────────
    // The function's own timeout plus a margin: a task never waits on an invocation Lambda has already ended.
    const task = (tid: string, stateName: string, f: PayplaneFunction, payload?: Record<string, unknown>, extra: Partial<tasks.LambdaInvokeProps> = {}) =>
      new tasks.LambdaInvoke(this, tid, {
        stateName,
        lambdaFunction: f.fn,
        payloadResponseOnly: true,
        payload: payload ? sfn.TaskInput.fromObject(payload) : undefined,
        taskTimeout: sfn.Timeout.duration(f.fn.timeout!.plus(Duration.seconds(30))),
        ...extra,
      });
    const bySettlement = { 'settlement_id.$': '$.settlement_id' };

    const prepareTask = task('PrepareTask', 'Prepare', prepare, { 'run.$': '$', 'run_id.$': '$$.Execution.Name' });
    const settleTask = task('SettleTask', 'Settle', settle);
    const payoutTask = task('PayoutTask', 'Payout', payout, bySettlement, { resultPath: '$.payout' });
    const compensateTask = task('CompensateTask', 'Compensate', compensate, { ...bySettlement, 'error.$': '$.error' }, { resultPath: '$.payout' });
    const reportTask = task('ReportTask', 'Report', report, bySettlement, { resultPath: sfn.JsonPath.DISCARD });
    const summaryTask = task('SummaryTask', 'Summary', summary, { 'cutoff.$': '$.cutoff', 'run_id.$': '$$.Execution.Name' });

    payoutTask.addRetry({ errors: ['PayoutTransientError'], ...PAYOUT_RETRY });
    // Compensation sits beside its side effect: whatever ended the payout (a permanent refusal, transient errors
    // past the last attempt, a crash) voids the reserve, after asking the channel whether the payout went through.
    payoutTask.addCatch(compensateTask, { errors: ['States.ALL'], resultPath: '$.error' });

    // Each iteration ends with an empty object, so the Map's result array stays small before it is discarded.
    const done = new sfn.Pass(this, 'AccountDone', { stateName: 'AccountDone', parameters: {} });
    reportTask.next(done);
    compensateTask.next(reportTask);
    // A result without a settlement (nothing to settle) has no status either: ask for the settlement first.
    const payOrReport = new sfn.Choice(this, 'PayOrReport', { stateName: 'Pay?' })
      .when(sfn.Condition.stringEquals('$.status', 'in_payout'), payoutTask.next(reportTask))
      .otherwise(reportTask);
    const madeOne = new sfn.Choice(this, 'MadeOne', { stateName: 'Settlement made?' }).when(sfn.Condition.isPresent('$.settlement_id'), payOrReport).otherwise(done);
    const settled = new sfn.Choice(this, 'SettledChoice', { stateName: 'Settled?' }).when(sfn.Condition.booleanEquals('$.done', false), settleTask).otherwise(madeOne);
    const eachAccount = new sfn.Map(this, 'EachAccount', {
      stateName: 'EachAccount',
      itemsPath: '$.items',
      maxConcurrency: SETTLE_CONCURRENCY,
      resultPath: sfn.JsonPath.DISCARD,
    }).itemProcessor(settleTask.next(settled));
    const morePages = new sfn.Choice(this, 'MorePages', { stateName: 'More pages?' }).when(sfn.Condition.isPresent('$.next'), prepareTask).otherwise(summaryTask);
    const definition = prepareTask.next(eachAccount).next(morePages);

    // ── The execution role: invoke these six functions, deliver logs, write traces; nothing else ──────────
    const stack = Stack.of(this);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Execution role of the ${stage} settlement state machine: invokes its six functions only`,
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: Object.values(this.functions).map((f) => f.fn.functionArn) }));
    // CloudWatch Logs delivery for Step Functions is configured on '*' (AWS documents no resource-level permissions).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'],
        resources: ['*'],
      }),
    );
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'], resources: ['*'] }));
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Only the CloudWatch Logs delivery actions (logs:*LogDelivery*, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) ' +
        'that Step Functions logging needs and the X-Ray actions of tracing: neither service supports resource-level permissions ' +
        'for them. lambda:InvokeFunction names the six settlement functions, without version or alias wildcards.',
    );

    this.logGroup = new LogGroup(this, 'Logs', { retention: settings.logRetention, removalPolicy: settings.removalPolicy });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'Payplane settlement: settle every merchant account, pay the nets out, reconcile the run (lib/constructs/settlement.ts)',
      // The grants above are the whole role: the tasks' own (which add `<function>:*`) are not added to it.
      role: this.role.withoutPolicyUpdates(),
      timeout: EXECUTION_TIMEOUT,
      tracingEnabled: true,
      // Every event, without the states' data: the history keeps that, and logs need no merchant figures.
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    this.stateMachine.node.addDependency(this.role);

    // ── The daily schedule ───────────────────────────────────────────────────────────────────────────
    const when = props.schedule ?? settings.settlementSchedule;
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Starts the ${stage} settlement state machine on its schedule (states:StartExecution on it only)`,
    });
    // No cutoff in the input: Prepare takes the start of the current business day (functions/settlements/calendar.ts).
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `Starts the daily settlement run (${when.expression}, ${when.timeZone})`,
      schedule: scheduler.ScheduleExpression.expression(when.expression, TimeZone.of(when.timeZone)),
      target: new targets.StepFunctionsStartExecution(this.stateMachine, {
        role: this.scheduleRole,
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'schedule' }),
        // A run that could not start is retried for an hour, then it is the alarm's (and the operator's) turn.
        maxEventAge: Duration.hours(1),
        retryAttempts: 10,
      }),
    });

    // ── Alarms ───────────────────────────────────────────────────────────────────────────────────────
    const runAlarm = (aid: string, metric: Metric, what: string) =>
      new Alarm(this, aid, {
        alarmDescription: what,
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    const period = { period: Duration.minutes(5), statistic: 'Sum' };
    runAlarm(
      'ExecutionsFailedAlarm',
      this.stateMachine.metricFailed(period),
      'A settlement run failed: a reconciliation break (ReconciliationError names each one), or a step that failed for good. ' +
        'Run it again for the same cutoff once the cause is fixed: nothing pays twice (docs/operations.md, Settlement).',
    );
    runAlarm('ExecutionsTimedOutAlarm', this.stateMachine.metricTimedOut(period), `A settlement run did not finish within ${EXECUTION_TIMEOUT.toHumanString()} and was stopped; run it again for the same cutoff (docs/operations.md, Settlement).`);
    new Alarm(this, 'MerchantNegativeBalanceAlarm', {
      alarmDescription: 'A merchant has stayed below zero (refunds after payout) for longer than allowed; the settlement logs name it (docs/operations.md, Settlement).',
      metric: new Metric({ namespace: METRICS_NAMESPACE, metricName: MERCHANT_NEGATIVE_BALANCE_METRIC, dimensionsMap: { service: 'payplane', stage }, statistic: 'Sum', period: Duration.minutes(5) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
