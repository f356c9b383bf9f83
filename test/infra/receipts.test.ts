import { App, Stack } from 'aws-cdk-lib';
import { AttributeType } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PayplaneFunction } from '../../lib/constructs/payplane-function';
import { PayplaneTable } from '../../lib/constructs/payplane-table';
import { Receipts } from '../../lib/constructs/receipts';
import { SENDER_TIMEOUT_SECONDS } from '../../functions/receipts/config';
import { actionsOf, cleanUp, logicalId, synth, type Statement } from './template';

/**
 * Payer receipts (lib/constructs/receipts.ts): its queue and DLQ, the sender consuming it with partial batch
 * responses, the SES identity and the configuration set that suppresses bounces and complaints, and the
 * sender's least-privilege grants.
 */
afterAll(cleanUp);
const s = () => synth('dev');
// Synth is the slow part (a minute or two on a loaded machine): once, outside any one test's timeout.
beforeAll(() => void s(), 300_000);

const senderStatements = (): Statement[] => {
  const { template, stack } = s();
  const roleId = logicalId(stack.receipts.sender.role);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${roleId}"`))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
};

describe('receipts queue', () => {
  it('SQS-managed SSE, TLS only, a DLQ after 5 receives, visibility 6× the sender timeout', () => {
    const { template, stack } = s();
    const resources = template.toJSON().Resources;
    expect(resources[logicalId(stack.receipts.queue)].Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 6 * SENDER_TIMEOUT_SECONDS,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(stack.receipts.deadLetterQueue), 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(resources[logicalId(stack.receipts.deadLetterQueue)].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
    expect(resources[logicalId(stack.receipts.sender.fn)].Properties.Timeout).toBe(SENDER_TIMEOUT_SECONDS);
    for (const q of [stack.receipts.queue, stack.receipts.deadLetterQueue]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(q) }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it('the sender consumes it with ReportBatchItemFailures', () => {
    const { template, stack } = s();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.receipts.queue), 'Arn'] },
      FunctionName: { Ref: logicalId(stack.receipts.sender.fn) },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    });
  });
});

describe('SES', () => {
  it("sends from the stage's domain identity, with the configuration set as its default", () => {
    const { template, stack } = s();
    template.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: 'dev.payplane.example',
      ConfigurationSetAttributes: { ConfigurationSetName: { Ref: logicalId(stack.receipts.configurationSet) } },
    });
  });

  it('the configuration set suppresses bounced and complaining addresses, requires TLS and keeps reputation metrics', () => {
    s().template.hasResourceProperties('AWS::SES::ConfigurationSet', {
      SuppressionOptions: { SuppressedReasons: Match.arrayEquals(['BOUNCE', 'COMPLAINT']) },
      DeliveryOptions: { TlsPolicy: 'REQUIRE' },
      ReputationOptions: { ReputationMetricsEnabled: true },
      SendingOptions: { SendingEnabled: true },
    });
  });

  it("gives the sender the From address and the configuration set's name", () => {
    const { template, stack } = s();
    const env = template.toJSON().Resources[logicalId(stack.receipts.sender.fn)].Properties.Environment.Variables;
    expect(env).toMatchObject({
      RECEIPTS_EMAIL_FROM: 'Payplane receipts <receipts@dev.payplane.example>',
      RECEIPTS_CONFIGURATION_SET: { Ref: logicalId(stack.receipts.configurationSet) },
      TABLE_NAME: { Ref: logicalId(stack.mainTable) },
    });
    expect(env.RECEIPTS_QUEUE_URL).toBeUndefined();
  });
});

describe("the sender's grants (least privilege)", () => {
  it('ses:SendEmail on the identity and the configuration set only; sns:Publish for SMS; no other send', () => {
    const statements = senderStatements();
    const ses = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('ses:')));
    expect(ses).toHaveLength(1);
    expect(actionsOf(ses[0]!)).toEqual(['ses:SendEmail']);
    const resources = JSON.stringify(ses[0]!.Resource);
    expect(resources).toContain(':identity/dev.payplane.example');
    expect(resources).toContain(':configuration-set/');
    expect(resources).toContain(logicalId(s().stack.receipts.configurationSet));
    const sns = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('sns:')));
    expect(sns).toEqual([{ Effect: 'Allow', Action: 'sns:Publish', Resource: '*' }]);
  });

  it("opens only values sealed with purpose 'payer', and reads and updates the main table without putting or deleting", () => {
    const { stack } = s();
    const statements = senderStatements();
    const kms = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:')) && !st.Condition?.StringEquals?.['kms:ViaService']);
    expect(kms).toEqual([
      { Effect: 'Allow', Action: 'kms:Decrypt', Resource: { 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] }, Condition: { StringEquals: { 'kms:EncryptionContext:purpose': ['payer'] } } },
    ]);
    const dynamodb = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('dynamodb:')));
    expect(dynamodb.flatMap(actionsOf).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
  });
});
