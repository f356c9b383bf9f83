import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';

/**
 * What each invocation costs in DynamoDB, published as CloudWatch metrics in the Embedded Metric
 * Format: a log line, so no API call, no IAM grant and no latency. The DynamoDB client asks every call
 * for its consumed capacity (clients.ts); the totals are flushed once per invocation, so a dashboard
 * can divide units by invocations per function and a cost regression shows up per route.
 *
 * Failed conditional writes are billed by DynamoDB but report no capacity; they count as calls only.
 */
export const METRICS_NAMESPACE = 'Payplane';

export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'payplane',
  defaultDimensions: { function: process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local' },
});

// One invocation at a time per Lambda environment, so a module-level tally is per invocation.
const usage = { calls: 0, readUnits: 0, writeUnits: 0 };

export function recordDynamoDbCall(kind: 'read' | 'write' | 'other', units: number): void {
  usage.calls++;
  if (kind === 'read') usage.readUnits += units;
  if (kind === 'write') usage.writeUnits += units;
}

function flush(): void {
  if (usage.calls > 0) {
    metrics.addMetric('DynamoDBCalls', MetricUnit.Count, usage.calls);
    metrics.addMetric('DynamoDBReadUnits', MetricUnit.Count, usage.readUnits);
    metrics.addMetric('DynamoDBWriteUnits', MetricUnit.Count, usage.writeUnits);
  }
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  usage.calls = usage.readUnits = usage.writeUnits = 0;
}

/**
 * Counts of events an operator must look at, each watched by a CloudWatch alarm (lib/payplane-stack.ts). Their
 * only dimensions are service and stage, not the function, so one alarm covers every function that counts one.
 */
export const ALARM_METRICS = {
  /** A channel result (notification or query answer) whose amount or currency is not the attempt's: refused. */
  channelResultMismatch: 'ChannelResultMismatch',
  /** A merchant's settlement carry has stayed negative past NEGATIVE_BALANCE_ALERT_DAYS (settlements/reconcile.ts). */
  merchantNegativeBalance: 'MerchantNegativeBalance',
} as const;
/** Published at once (one EMF line), so a count survives an invocation that fails afterwards. */
export function countAlarmMetric(name: (typeof ALARM_METRICS)[keyof typeof ALARM_METRICS]): void {
  new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'payplane', defaultDimensions: { stage: process.env.STAGE ?? 'local' }, singleMetric: true }).addMetric(
    name,
    MetricUnit.Count,
    1,
  );
}

/** Publishes the invocation's usage whether it succeeded or threw. */
export const usageMetrics = (): MiddlewareObj => ({
  before: () => {
    usage.calls = usage.readUnits = usage.writeUnits = 0;
  },
  after: flush,
  onError: flush,
});
