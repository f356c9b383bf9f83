import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoDbAccess } from '../../local/dynamodb-proxy';
import { LocalIam, loadOperatorPolicy, type AccessRequest } from '../../local/iam';
import { LocalKms } from '../../local/kms';
import { LocalSqs, queueConfigs, sqsAccessRequests } from '../../local/sqs';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * The local cloud's IAM, one row per SDK operation Payplane's code sends: how the call is turned into
 * IAM requests (action, resource, context) as the service would, and the decision of
 * @cloud-copilot/iam-simulate against a minimal policy that grants it and one that almost does.
 */

const arn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const ROOT_KEY_POLICY = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: join('arn:aws:iam::', { Ref: 'AWS::AccountId' }, ':root') }, Action: 'kms:*', Resource: '*' }],
};
const VIA_DYNAMODB = { StringEquals: { 'kms:ViaService': 'dynamodb.us-east-1.amazonaws.com' } };

/** A stack with one function whose role holds exactly `statements`. */
function stackWith(statements: unknown[], extra: CfnTemplate['Resources'] = {}): LocalStack {
  const template: CfnTemplate = {
    Resources: {
      Key: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: ROOT_KEY_POLICY } },
      MacKey: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: ROOT_KEY_POLICY, KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } },
      SignKey: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: ROOT_KEY_POLICY, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' } },
      Main: {
        Type: 'AWS::DynamoDB::GlobalTable',
        Properties: { SSESpecification: { SSEEnabled: true, SSEType: 'KMS' }, Replicas: [{ Region: 'us-east-1', SSESpecification: { KMSMasterKeyId: arn('Key') } }] },
      },
      Idem: { Type: 'AWS::DynamoDB::GlobalTable', Properties: { Replicas: [{ Region: 'us-east-1' }] } },
      Queue: { Type: 'AWS::SQS::Queue', Properties: {} },
      // What QueueEncryption.KMS with the stack's key synthesizes.
      KeyQueue: { Type: 'AWS::SQS::Queue', Properties: { KmsMasterKeyId: arn('Key') } },
      QueuePolicy: {
        Type: 'AWS::SQS::QueuePolicy',
        Properties: {
          Queues: [{ Ref: 'Queue' }],
          // What enforceSSL: true synthesizes.
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Deny', Principal: { AWS: '*' }, Action: 'sqs:*', Resource: arn('Queue'), Condition: { Bool: { 'aws:SecureTransport': 'false' } } }],
          },
        },
      },
      Role: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [] } } },
      RolePolicy: { Type: 'AWS::IAM::Policy', Properties: { Roles: [{ Ref: 'Role' }], PolicyDocument: { Version: '2012-10-17', Statement: statements } } },
      Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: arn('Role'), Handler: 'index.handler', Runtime: 'nodejs22.x' } },
      ...extra,
    },
  };
  return new LocalStack(template, { stackName: 'Payplane-unit' });
}

const stack0 = stackWith([]);
const MAIN = `arn:aws:dynamodb:us-east-1:000000000000:table/${stack0.tableName('Main')}`;
const IDEM = `arn:aws:dynamodb:us-east-1:000000000000:table/${stack0.tableName('Idem')}`;
const KEY = stack0.kmsKeyArn('Key');
const MAC_KEY = stack0.kmsKeyArn('MacKey');
const SIGN_KEY = stack0.kmsKeyArn('SignKey');
const QUEUE = String(stack0.getAtt('Queue', 'Arn', 'test'));
const VIA_SQS = { StringEquals: { 'kms:ViaService': 'sqs.us-east-1.amazonaws.com' } };
const keyQueueUrl = () => `http://127.0.0.1:1/000000000000/${stack0.queueName('KeyQueue')}`;
const mainName = stack0.tableName('Main');
const idemName = stack0.tableName('Idem');
const keyOnlyThroughDynamoDb = { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: arn('Key'), Condition: VIA_DYNAMODB };
const allow = (action: string | string[], resource: unknown) => ({ Effect: 'Allow', Action: action, Resource: resource });

/** The requests one call needs, derived by the endpoint that serves it. */
function derive(stack: LocalStack, service: 'dynamodb' | 'kms' | 'sqs', operation: string, input: Record<string, unknown>): AccessRequest[] {
  if (service === 'dynamodb') return new DynamoDbAccess(stack).requests(operation, input);
  if (service === 'kms') return [new LocalKms(stack, randomBytes(32)).accessRequest(operation, input)!];
  const sqs = new LocalSqs(queueConfigs(stack), 'http://127.0.0.1:1', stack.account);
  return sqsAccessRequests(sqs, operation, input);
}

async function decide(statements: unknown[], service: 'dynamodb' | 'kms' | 'sqs', operation: string, input: Record<string, unknown>) {
  const stack = stackWith(statements);
  const iam = new LocalIam(stack, { log: () => {}, operatorPolicy: { Statement: [] } });
  const principal = iam.principalOf({ authorization: `AWS4-HMAC-SHA256 Credential=${iam.credentialsFor('Fn').accessKeyId}/20260101/us-east-1/${service}/aws4_request` })!;
  return iam.authorize(principal, derive(stack, service, operation, input));
}

const sealed = () => {
  const kms = new LocalKms(stack0, randomBytes(32));
  return kms.encrypt(kms.findKey(KEY), Buffer.from('x'), { purpose: 'pii', merchant_id: 'mch_1' }).toString('base64');
};

interface Case {
  call: string;
  service: 'dynamodb' | 'kms' | 'sqs';
  operation: string;
  input: () => Record<string, unknown>;
  grant: unknown[];
  /** Grants that look right but are not: each must be refused, and the refusal must name `refused`. */
  nearMisses: { grant: unknown[]; refused: string }[];
}

const key = { pk: { S: 'ORDER#1' }, sk: { S: 'ORDER' } };
const CASES: Case[] = [
  {
    call: 'GetItem on the main table (encrypted with the stack key)',
    service: 'dynamodb',
    operation: 'GetItem',
    input: () => ({ TableName: mainName, Key: key }),
    grant: [allow('dynamodb:GetItem', arn('Main')), keyOnlyThroughDynamoDb],
    nearMisses: [
      { grant: [allow('dynamodb:GetItem', arn('Main'))], refused: 'kms:Decrypt' },
      { grant: [allow('dynamodb:Query', arn('Main')), keyOnlyThroughDynamoDb], refused: 'dynamodb:GetItem' },
      { grant: [allow('dynamodb:GetItem', arn('Idem')), keyOnlyThroughDynamoDb], refused: 'dynamodb:GetItem' },
    ],
  },
  {
    call: 'PutItem on the idempotency table (no customer key)',
    service: 'dynamodb',
    operation: 'PutItem',
    input: () => ({ TableName: idemName, Item: { id: { S: 'k' } } }),
    grant: [allow('dynamodb:PutItem', arn('Idem'))],
    nearMisses: [{ grant: [allow('dynamodb:UpdateItem', arn('Idem'))], refused: 'dynamodb:PutItem' }],
  },
  {
    call: 'UpdateItem',
    service: 'dynamodb',
    operation: 'UpdateItem',
    input: () => ({ TableName: mainName, Key: key, UpdateExpression: 'SET a = :a' }),
    grant: [allow('dynamodb:UpdateItem', arn('Main')), keyOnlyThroughDynamoDb],
    nearMisses: [{ grant: [allow('dynamodb:PutItem', arn('Main')), keyOnlyThroughDynamoDb], refused: 'dynamodb:UpdateItem' }],
  },
  {
    call: 'DeleteItem (idempotency release)',
    service: 'dynamodb',
    operation: 'DeleteItem',
    input: () => ({ TableName: idemName, Key: { id: { S: 'k' } } }),
    grant: [allow('dynamodb:DeleteItem', arn('Idem'))],
    nearMisses: [{ grant: [allow('dynamodb:DeleteItem', arn('Main'))], refused: 'dynamodb:DeleteItem' }],
  },
  {
    call: 'Query on index gsi1 is dynamodb:Query on …/index/gsi1',
    service: 'dynamodb',
    operation: 'Query',
    input: () => ({ TableName: mainName, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :m' }),
    grant: [allow('dynamodb:Query', join(arn('Main'), '/index/gsi1')), keyOnlyThroughDynamoDb],
    nearMisses: [
      { grant: [allow('dynamodb:Query', arn('Main')), keyOnlyThroughDynamoDb], refused: `dynamodb:Query on resource: ${MAIN}/index/gsi1` },
      { grant: [allow('dynamodb:Query', join(arn('Main'), '/index/gsi2')), keyOnlyThroughDynamoDb], refused: 'dynamodb:Query' },
    ],
  },
  {
    call: 'BatchGetItem (balance accounts)',
    service: 'dynamodb',
    operation: 'BatchGetItem',
    input: () => ({ RequestItems: { [mainName]: { Keys: [key] } } }),
    grant: [allow('dynamodb:BatchGetItem', arn('Main')), keyOnlyThroughDynamoDb],
    nearMisses: [{ grant: [allow('dynamodb:GetItem', arn('Main')), keyOnlyThroughDynamoDb], refused: 'dynamodb:BatchGetItem' }],
  },
  {
    call: 'TransactWriteItems needs each item’s action on each item’s table',
    service: 'dynamodb',
    operation: 'TransactWriteItems',
    input: () => ({
      TransactItems: [
        { Put: { TableName: mainName, Item: key } },
        { Update: { TableName: mainName, Key: key, UpdateExpression: 'SET a = :a' } },
        { ConditionCheck: { TableName: idemName, Key: { id: { S: 'k' } }, ConditionExpression: 'attribute_exists(id)' } },
      ],
    }),
    grant: [allow(['dynamodb:PutItem', 'dynamodb:UpdateItem'], arn('Main')), allow('dynamodb:ConditionCheckItem', arn('Idem')), keyOnlyThroughDynamoDb],
    nearMisses: [
      { grant: [allow(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'], arn('Main')), keyOnlyThroughDynamoDb], refused: `dynamodb:ConditionCheckItem on resource: ${IDEM}` },
      { grant: [allow('dynamodb:PutItem', arn('Main')), allow('dynamodb:ConditionCheckItem', arn('Idem')), keyOnlyThroughDynamoDb], refused: 'dynamodb:UpdateItem' },
    ],
  },
  {
    call: 'GenerateDataKey (Encryption SDK) on the key ARN',
    service: 'kms',
    operation: 'GenerateDataKey',
    input: () => ({ KeyId: KEY, KeySpec: 'AES_256', EncryptionContext: { purpose: 'pii', merchant_id: 'mch_1' } }),
    grant: [allow('kms:GenerateDataKey', arn('Key'))],
    nearMisses: [
      { grant: [allow('kms:GenerateDataKey', arn('MacKey'))], refused: `kms:GenerateDataKey on resource: ${KEY}` },
      { grant: [allow('kms:GenerateDataKey', arn('Key')), { Effect: 'Deny', Action: 'kms:*', Resource: '*', Condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'merchant_id' } } }], refused: 'explicit deny' },
    ],
  },
  {
    call: 'GenerateDataKey conditioned on kms:EncryptionContext:purpose (the checkout seals card summaries only)',
    service: 'kms',
    operation: 'GenerateDataKey',
    input: () => ({ KeyId: KEY, KeySpec: 'AES_256', EncryptionContext: { purpose: 'card', merchant_id: 'mch_1' } }),
    grant: [{ Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: arn('Key'), Condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'card' } } }],
    nearMisses: [
      { grant: [{ Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: arn('Key'), Condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'payer' } } }], refused: `kms:GenerateDataKey on resource: ${KEY}` },
      { grant: [{ Effect: 'Allow', Action: 'kms:GenerateDataKey', Resource: arn('Key'), Condition: { StringEquals: { 'kms:EncryptionContext:merchant_id': 'mch_2' } } }], refused: `kms:GenerateDataKey on resource: ${KEY}` },
    ],
  },
  {
    call: 'Decrypt without KeyId: the key is the one inside the ciphertext',
    service: 'kms',
    operation: 'Decrypt',
    input: () => ({ CiphertextBlob: sealed(), EncryptionContext: { purpose: 'pii', merchant_id: 'mch_1' } }),
    grant: [allow('kms:Decrypt', arn('Key'))],
    nearMisses: [
      // The table-key grant: DynamoDB may decrypt with it, the function itself may not (kms:ViaService).
      { grant: [keyOnlyThroughDynamoDb], refused: `kms:Decrypt on resource: ${KEY}` },
      { grant: [allow('kms:Decrypt', arn('SignKey'))], refused: 'kms:Decrypt' },
    ],
  },
  {
    call: 'GenerateMac (card fingerprint, sandbox notifier)',
    service: 'kms',
    operation: 'GenerateMac',
    input: () => ({ KeyId: MAC_KEY, MacAlgorithm: 'HMAC_SHA_256', Message: 'eA==' }),
    grant: [allow('kms:GenerateMac', arn('MacKey'))],
    nearMisses: [{ grant: [allow('kms:VerifyMac', arn('MacKey'))], refused: 'kms:GenerateMac' }],
  },
  {
    call: 'VerifyMac (sandbox notify)',
    service: 'kms',
    operation: 'VerifyMac',
    input: () => ({ KeyId: MAC_KEY, MacAlgorithm: 'HMAC_SHA_256', Message: 'eA==', Mac: 'eA==' }),
    grant: [allow('kms:VerifyMac', arn('MacKey'))],
    nearMisses: [{ grant: [allow('kms:GenerateMac', arn('MacKey'))], refused: 'kms:VerifyMac' }],
  },
  {
    call: 'Sign (checkout return signature)',
    service: 'kms',
    operation: 'Sign',
    input: () => ({ KeyId: SIGN_KEY, SigningAlgorithm: 'ECDSA_SHA_256', Message: 'eA==' }),
    grant: [allow('kms:Sign', arn('SignKey'))],
    nearMisses: [{ grant: [allow('kms:Sign', arn('Key'))], refused: `kms:Sign on resource: ${SIGN_KEY}` }],
  },
  {
    call: 'SendMessage goes to the queue ARN (queue policy denies without TLS; loopback counts as TLS)',
    service: 'sqs',
    operation: 'SendMessage',
    input: () => ({ QueueUrl: `http://127.0.0.1:1/000000000000/${stack0.queueName('Queue')}`, MessageBody: 'x' }),
    grant: [allow('sqs:SendMessage', arn('Queue'))],
    nearMisses: [{ grant: [allow('sqs:ReceiveMessage', arn('Queue'))], refused: `sqs:SendMessage on resource: ${QUEUE}` }],
  },
  {
    call: 'DeleteMessageBatch is sqs:DeleteMessage (the poller)',
    service: 'sqs',
    operation: 'DeleteMessageBatch',
    input: () => ({ QueueUrl: `http://127.0.0.1:1/000000000000/${stack0.queueName('Queue')}`, Entries: [] }),
    grant: [allow('sqs:DeleteMessage', arn('Queue'))],
    nearMisses: [{ grant: [allow('sqs:ReceiveMessage', arn('Queue'))], refused: 'sqs:DeleteMessage' }],
  },
  {
    call: 'ReceiveMessage (the poller, with the function role)',
    service: 'sqs',
    operation: 'ReceiveMessage',
    input: () => ({ QueueUrl: `http://127.0.0.1:1/000000000000/${stack0.queueName('Queue')}` }),
    grant: [allow('sqs:ReceiveMessage', arn('Queue'))],
    nearMisses: [{ grant: [allow('sqs:ReceiveMessage', arn('Key'))], refused: 'sqs:ReceiveMessage' }],
  },
  {
    call: 'SendMessage to a queue under a KMS key: also kms:GenerateDataKey and kms:Decrypt through SQS (bindQueue)',
    service: 'sqs',
    operation: 'SendMessage',
    input: () => ({ QueueUrl: keyQueueUrl(), MessageBody: 'x' }),
    grant: [allow('sqs:SendMessage', arn('KeyQueue')), { ...allow(['kms:GenerateDataKey', 'kms:Decrypt'], arn('Key')), Condition: VIA_SQS }],
    nearMisses: [
      { grant: [allow('sqs:SendMessage', arn('KeyQueue'))], refused: `kms:GenerateDataKey on resource: ${KEY}` },
      // The key through DynamoDB is not the key through SQS.
      { grant: [allow('sqs:SendMessage', arn('KeyQueue')), { ...allow(['kms:GenerateDataKey', 'kms:Decrypt'], arn('Key')), Condition: VIA_DYNAMODB }], refused: 'kms:GenerateDataKey' },
    ],
  },
  {
    call: 'ReceiveMessage from a queue under a KMS key: also kms:Decrypt through SQS (consumeQueue)',
    service: 'sqs',
    operation: 'ReceiveMessage',
    input: () => ({ QueueUrl: keyQueueUrl() }),
    grant: [allow('sqs:ReceiveMessage', arn('KeyQueue')), { ...allow('kms:Decrypt', arn('Key')), Condition: VIA_SQS }],
    nearMisses: [{ grant: [allow('sqs:ReceiveMessage', arn('KeyQueue')), { ...allow('kms:GenerateDataKey', arn('Key')), Condition: VIA_SQS }], refused: `kms:Decrypt on resource: ${KEY}` }],
  },
];

describe('local IAM: allow and deny per SDK operation', () => {
  it.each(CASES)('$call: allowed by its minimal grant', async (c) => {
    // Act
    const verdict = await decide(c.grant, c.service, c.operation, c.input());
    // Assess
    expect(verdict).toEqual({ allowed: true });
  });

  it.each(CASES.flatMap((c) => c.nearMisses.map((m, i) => ({ ...c, miss: m, n: i + 1 }))))('$call: refused by near miss $n', async (c) => {
    // Act
    const verdict = await decide(c.miss.grant, c.service, c.operation, c.input());
    // Assess: AWS's wording, naming the role session, the action and the resource.
    expect(verdict.allowed).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.served).toBe(false);
    expect(verdict.denial.message).toMatch(/^User: arn:aws:sts::000000000000:assumed-role\/Payplane-unit-Role\/Payplane-unit-Fn is not authorized to perform: \S+ on resource: \S+ (because no identity-based policy allows the \S+ action|with an explicit deny in an? (identity|resource)-based policy)$/);
    expect(verdict.denial.message).toContain(c.miss.refused);
  });
});

describe('local IAM: conditions and resource policies', () => {
  it('refuses a direct kms:Decrypt to a function that holds only the kms:ViaService grant, and allows the same key through DynamoDB', async () => {
    // Arrange
    const grant = [allow('dynamodb:GetItem', arn('Main')), keyOnlyThroughDynamoDb];
    // Act
    const direct = await decide(grant, 'kms', 'Decrypt', { CiphertextBlob: sealed() });
    const viaDynamoDb = await decide(grant, 'dynamodb', 'GetItem', { TableName: mainName, Key: key });
    // Assess
    expect(direct.allowed).toBe(false);
    expect(!direct.allowed && direct.denial.message).toContain(`kms:Decrypt on resource: ${KEY} because no identity-based policy allows`);
    expect(viaDynamoDb).toEqual({ allowed: true });
  });

  it('denies with the queue policy’s explicit deny, whatever the identity policy grants', async () => {
    // Arrange: a queue policy that denies this role outright.
    const stack = stackWith([allow('sqs:*', '*')], {
      DenyPolicy: {
        Type: 'AWS::SQS::QueuePolicy',
        Properties: { Queues: [{ Ref: 'Queue' }], PolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: { AWS: '*' }, Action: 'sqs:SendMessage', Resource: arn('Queue') }] } },
      },
    });
    const iam = new LocalIam(stack, { log: () => {}, operatorPolicy: { Statement: [] } });
    const principal = iam.principalByName('Fn')!;
    // Act
    const verdict = await iam.authorize(principal, derive(stack, 'sqs', 'SendMessage', { QueueUrl: `http://x/000000000000/${stack.queueName('Queue')}` }));
    // Assess
    expect(!verdict.allowed && verdict.denial.message).toMatch(/with an explicit deny in a resource-based policy$/);
  });

  it('refuses a KMS key whose key policy does not trust the account, even with an identity grant', async () => {
    // Arrange
    const stack = stackWith([allow('kms:GenerateMac', arn('MacKey'))]);
    (stack.template.Resources.MacKey!.Properties as Record<string, unknown>).KeyPolicy = { Version: '2012-10-17', Statement: [] };
    const iam = new LocalIam(stack, { log: () => {}, operatorPolicy: { Statement: [] } });
    // Act
    const verdict = await iam.authorize(iam.principalByName('Fn')!, derive(stack, 'kms', 'GenerateMac', { KeyId: MAC_KEY }));
    // Assess
    expect(verdict.allowed).toBe(false);
  });

  it('lets API Gateway invoke a function only for the method ARNs its AWS::Lambda::Permission names (aws:SourceArn)', async () => {
    // Arrange
    const stack = stackWith([], {
      Permission: {
        Type: 'AWS::Lambda::Permission',
        Properties: { Action: 'lambda:InvokeFunction', FunctionName: arn('Fn'), Principal: 'apigateway.amazonaws.com', SourceArn: 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/POST/v1/orders/*/confirm' },
      },
    });
    const iam = new LocalIam(stack, { log: () => {}, operatorPolicy: { Statement: [] } });
    const fn = stack.functionArn('Fn');
    // Act
    const granted = await iam.authorizeService('apigateway.amazonaws.com', fn, 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/POST/v1/orders/ord_1/confirm');
    const otherMethod = await iam.authorizeService('apigateway.amazonaws.com', fn, 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/v1/orders/ord_1/confirm');
    const otherService = await iam.authorizeService('events.amazonaws.com', fn, 'arn:aws:events:us-east-1:000000000000:rule/x');
    // Assess
    expect(granted).toEqual({ allowed: true });
    expect(otherMethod.allowed).toBe(false);
    expect(otherService.allowed).toBe(false);
  });

  it('serves and logs a refusal in audit mode', async () => {
    // Arrange
    const lines: string[] = [];
    const stack = stackWith([]);
    const iam = new LocalIam(stack, { mode: 'audit', log: (l) => lines.push(l), operatorPolicy: { Statement: [] } });
    // Act
    const verdict = await iam.authorize(iam.principalByName('Fn')!, derive(stack, 'dynamodb', 'PutItem', { TableName: idemName }));
    // Assess
    expect(verdict).toMatchObject({ allowed: false, served: true });
    expect(lines).toEqual([expect.stringMatching(/^AUDIT \(served\) Fn: User: .* is not authorized to perform: dynamodb:PutItem on resource: /)]);
    expect(iam.report().principals.Fn!.refusals).toEqual([`dynamodb:PutItem ${IDEM}`]);
  });

  it('reports granted-but-unused grants per function', async () => {
    // Arrange
    const stack = stackWith([allow(['dynamodb:GetItem', 'dynamodb:DeleteItem'], arn('Idem'))]);
    const iam = new LocalIam(stack, { log: () => {}, operatorPolicy: { Statement: [] } });
    // Act
    await iam.authorize(iam.principalByName('Fn')!, derive(stack, 'dynamodb', 'GetItem', { TableName: idemName }));
    // Assess
    expect(iam.report().principals.Fn).toMatchObject({ used: [`dynamodb:GetItem ${IDEM}`], unused: [`dynamodb:DeleteItem ${IDEM}`], refusals: [] });
  });
});

describe('the operator policy (docs/operator-policy.json)', () => {
  it('fills its placeholders from the stack and holds only actions IAM knows', async () => {
    // Act
    const policy = loadOperatorPolicy(stackWith([]));
    // Assess: no placeholder left; and no dynamodb:TransactWriteItems, which is not an IAM action.
    expect(JSON.stringify(policy)).not.toMatch(/<\w+>/);
    const actions = (policy.Statement as { Action: string | string[] }[]).flatMap((s) => [s.Action].flat());
    expect(actions).not.toContain('dynamodb:TransactWriteItems');
  });
});
