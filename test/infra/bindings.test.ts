import { Template } from 'aws-cdk-lib/assertions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app';
import { PayplaneFunction, variableOf, withVariable } from '../../lib/constructs/payplane-function';
import { actionsOf, logicalId, type Statement } from './template';

/**
 * A binding sets the resource's environment variable and its grant in one call (issue 9 §1), and queues under a
 * KMS key get that key through SQS only (issue 9 §3). Probed on extra functions added to the real dev stack.
 */
describe('bindings', () => {
  const { stack } = buildApp({ stage: 'dev', bundling: false });
  const encrypted = withVariable(
    new Queue(stack, 'ProbeEncrypted', { encryption: QueueEncryption.KMS, encryptionMasterKey: stack.key, enforceSSL: true }),
    'PROBE_QUEUE_URL',
  );
  const producer = new PayplaneFunction(stack, 'ProbeProducer', { stage: 'dev', entry: 'functions/handlers/get-order.ts' })
    .bindTable(stack.mainTable, { actions: ['GetItem'] })
    .bindKey(stack.key, 'decrypt')
    .bindMacKey(stack.fingerprintKey, 'generate')
    .bindSignKey(stack.checkoutSigningKey)
    .bindQueue(encrypted, 'send');
  // As the other constructs of lib/constructs/ still call it: explicit variables beside the bindings.
  const explicit = new PayplaneFunction(stack, 'ProbeExplicit', {
    stage: 'dev',
    entry: 'functions/handlers/get-order.ts',
    environment: { TABLE_NAME: stack.mainTable.tableName, OTHER_SETTING: 'x' },
  }).bindTable(stack.mainTable, { actions: ['GetItem'] });
  const consumer = new PayplaneFunction(stack, 'ProbeConsumer', { stage: 'dev', entry: 'functions/handlers/get-order.ts' }).consumeQueue(encrypted);
  const template = Template.fromStack(stack).toJSON();
  const variables = (f: PayplaneFunction) => template.Resources[logicalId(f.fn)].Properties.Environment.Variables as Record<string, unknown>;
  const statements = (f: PayplaneFunction): Statement[] =>
    Object.values(template.Resources as Record<string, any>)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${logicalId(f.role)}"`))
      .flatMap((r) => r.Properties.PolicyDocument.Statement as Statement[]);
  const keyArn = { 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] };
  const viaSqs = { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', [`sqs.${stack.region}.`, { Ref: 'AWS::URLSuffix' }]] } } };

  it('hands each bound resource over under its variable: table name, key ARNs, queue URL', () => {
    expect(variables(producer)).toEqual({
      TABLE_NAME: { Ref: logicalId(stack.mainTable) },
      KMS_KEY_ARN: keyArn,
      FINGERPRINT_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.fingerprintKey), 'Arn'] },
      CHECKOUT_SIGNING_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.checkoutSigningKey), 'Arn'] },
      PROBE_QUEUE_URL: { Ref: logicalId(encrypted) },
      STAGE: 'dev',
      POWERTOOLS_SERVICE_NAME: 'payplane',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
    expect([variableOf(stack.mainTable), variableOf(stack.idempotencyTable), variableOf(stack.sandboxSigningKey), variableOf(stack.sandboxCallbacks)]).toEqual([
      'TABLE_NAME',
      'IDEMPOTENCY_TABLE_NAME',
      'SANDBOX_SIGNING_KEY_ARN',
      'SANDBOX_CALLBACK_QUEUE_URL',
    ]);
  });

  it('keeps explicit variables working beside the bindings (the same value twice is one variable)', () => {
    expect(variables(explicit)).toMatchObject({ TABLE_NAME: { Ref: logicalId(stack.mainTable) }, OTHER_SETTING: 'x' });
  });

  it('a consumer is not told the queue URL: the poller reads the queue, not its code', () => {
    expect(Object.keys(variables(consumer))).not.toContain('PROBE_QUEUE_URL');
  });

  it('a queue under a KMS key: the producer may GenerateDataKey and Decrypt, the consumer Decrypt, both only through SQS', () => {
    const onKey = (f: PayplaneFunction) => statements(f).filter((st) => JSON.stringify(st.Resource) === JSON.stringify(keyArn) && actionsOf(st).some((a) => a.startsWith('kms:')));
    expect(onKey(producer).find((st) => st.Condition?.StringEquals?.['kms:ViaService'] && JSON.stringify(st.Condition).includes('sqs.'))).toMatchObject({
      Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
      Condition: viaSqs,
    });
    // The consumer's only use of the key is SQS's (no unconditioned kms:Decrypt from the event source's own grant).
    expect(onKey(consumer)).toEqual([{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn, Condition: viaSqs }]);
    const queueArn = { 'Fn::GetAtt': [logicalId(encrypted), 'Arn'] };
    expect(statements(producer).filter((st) => JSON.stringify(st.Resource) === JSON.stringify(queueArn)).flatMap(actionsOf)).toEqual(['sqs:SendMessage']);
    expect(statements(consumer).filter((st) => JSON.stringify(st.Resource) === JSON.stringify(queueArn)).flatMap(actionsOf).sort()).toEqual(
      ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'].sort(),
    );
    const mapping = Object.values(template.Resources as Record<string, any>).find(
      (r) => r.Type === 'AWS::Lambda::EventSourceMapping' && JSON.stringify(r.Properties.FunctionName).includes(logicalId(consumer.fn)),
    );
    expect(mapping.Properties).toMatchObject({ EventSourceArn: queueArn, FunctionResponseTypes: ['ReportBatchItemFailures'] });
  });

  it('refuses a variable name that is not an environment variable name', () => {
    expect(() => withVariable(stack.key, 'kms-key')).toThrow("Payplane-dev/Key: environment variable 'kms-key' must be upper case letters");
  });
});
