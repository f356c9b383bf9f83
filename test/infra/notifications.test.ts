import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { DELIVERER_TIMEOUT, DELIVERY_CONCURRENCY, OVERDUE_SECONDS, SLOW_LANE_CONCURRENCY } from '../../lib/constructs/notifications';
import { actionsOf, cleanUp, logicalId, references, roleStatements, synth } from './template';

/** Issue 9 §3: the webhook pipeline's key settings, as synthesized (dev: the settings do not vary by stage). */
afterAll(cleanUp);
const s = () => synth('dev');
const resources = () => s().template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, any> }>;
const n = () => s().stack.notifications;
const mappingOf = (fnId: string) =>
  Object.values(resources()).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping' && r.Properties.FunctionName?.Ref === fnId)!.Properties;

describe('notifications', () => {
  it('the publisher reads the stream: INSERTs of event items only, bisect on error, 5 retries, an on-failure queue', () => {
    const mapping = mappingOf(logicalId(n().functions.PublishEvents.fn));
    expect(mapping).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [logicalId(s().stack.mainTable), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(n().publisherFailures), 'Arn'] } } },
    });
    expect(mapping.FilterCriteria.Filters.map((f: { Pattern: string }) => JSON.parse(f.Pattern))).toEqual([{ eventName: ['INSERT'], dynamodb: { NewImage: { type: { S: ['event'] } } } }]);
  });

  it('the publisher may use the table key only through DynamoDB (it never opens sealed values)', () => {
    const key = logicalId(s().stack.key);
    for (const st of roleStatements(s(), 'PublishEvents').filter((st) => references(st, key))) {
      expect(st.Condition?.StringEquals?.['kms:ViaService'], JSON.stringify(st)).toBeDefined();
    }
  });

  it.each([
    ['DeliverWebhooks', 'Deliveries', DELIVERY_CONCURRENCY],
    ['DeliverWebhooksSlow', 'SlowDeliveries', SLOW_LANE_CONCURRENCY],
  ] as const)('%s consumes %s: partial batch responses, batches of 10, MaximumConcurrency %i, visibility 6× its timeout, a DLQ', (fnId, queueId, concurrency) => {
    const fn = n().functions[fnId];
    const queue = queueId === 'Deliveries' ? n().deliveries : n().slowDeliveries;
    expect(mappingOf(logicalId(fn.fn))).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [logicalId(queue), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: concurrency },
    });
    const timeout = resources()[logicalId(fn.fn)]!.Properties.Timeout;
    // 10 s per POST, in parallel within the batch, plus signing and writes.
    expect(timeout).toBe(DELIVERER_TIMEOUT.toSeconds());
    expect(timeout).toBeGreaterThan(10);
    expect(resources()[logicalId(queue)]!.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * timeout,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(n().deliveriesDlq), 'Arn'] }, maxReceiveCount: 5 },
    });
  });

  it('every queue is encrypted and refuses requests without TLS', () => {
    for (const q of [n().deliveries, n().slowDeliveries, n().deliveriesDlq, n().publisherFailures]) {
      expect(resources()[logicalId(q)]!.Properties.SqsManagedSseEnabled).toBe(true);
      s().template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(q) }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it('alarms: DLQ depth, publisher failures, deliveries overdue against their schedule', () => {
    const alarms = Object.values(resources()).filter((r) => r.Type === 'AWS::CloudWatch::Alarm').map((r) => r.Properties);
    const depth = (q: string) => alarms.find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && a.Dimensions?.[0]?.Value?.['Fn::GetAtt']?.[0] === q);
    expect(depth(logicalId(n().deliveriesDlq))).toMatchObject({ Threshold: 1 });
    expect(depth(logicalId(n().publisherFailures))).toMatchObject({ Threshold: 1 });
    expect(alarms.find((a) => a.MetricName === 'WebhookDeliveryLateness')).toMatchObject({ Namespace: 'Payplane', Statistic: 'Maximum', Threshold: OVERDUE_SECONDS });
  });

  it('the sweeper runs every minute; the JWKS route is public, resend and recover are merchant routes', () => {
    s().template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalId(n().functions.SweepEvents.fn), 'Arn'] } })],
    });
    const methods = Object.values(resources()).filter((r) => r.Type === 'AWS::ApiGateway::Method').map((r) => r.Properties);
    const byFn = (id: 'PlatformPublicKeys' | 'ResendEvent' | 'RecoverWebhookEndpoint') =>
      methods.find((m) => JSON.stringify(m.Integration?.Uri ?? '').includes(logicalId(n().functions[id].fn)))!;
    expect(byFn('PlatformPublicKeys').AuthorizationType).toBe('NONE');
    expect(byFn('ResendEvent').AuthorizationType).toBe('CUSTOM');
    expect(byFn('RecoverWebhookEndpoint').AuthorizationType).toBe('CUSTOM');
  });

  it('the public keys function touches only the PLATFORMKEY partition, seals only the platform key, never decrypts', () => {
    const statements = roleStatements(s(), 'PlatformPublicKeys');
    for (const st of statements.filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')) && !st.Condition?.StringEquals?.['kms:ViaService'])) {
      expect(st.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['PLATFORMKEY'] } });
    }
    const direct = statements.filter((st) => references(st, logicalId(s().stack.key)) && !st.Condition?.StringEquals?.['kms:ViaService']);
    expect(direct.flatMap(actionsOf)).toEqual(['kms:GenerateDataKey']);
    expect(direct[0]!.Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:purpose': ['platform_signing_key'] } });
  });

  it('no synthesized function allows loopback webhooks (only the local cloud injects that setting at run time)', () => {
    expect(JSON.stringify(s().template.toJSON())).not.toContain('PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS');
  });
});
