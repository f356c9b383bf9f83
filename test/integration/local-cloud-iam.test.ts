import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APIGatewayClient, FlushStageAuthorizersCacheCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import type { IamMode } from '../../local/iam';
import type { CfnTemplate } from '../../local/template';

/**
 * IAM in the running local cloud, on the hand-made fixture assembly: each endpoint refuses what the
 * template does not grant with the service's own AccessDeniedException (wire format, AWS's message),
 * and in audit mode serves it and logs one line.
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const ECHO = 'EchoFunctionA1B2C3D4';

/** The fixture assembly with the Echo role's DynamoDB statement removed, under its own stack name. */
function withoutTableGrant(stackName: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'payplane-iam-'));
  const template = JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate;
  const policy = template.Resources.FunctionRoleDefaultPolicy3A4B5C6D!.Properties!.PolicyDocument as { Statement: { Sid?: string }[] };
  policy.Statement = policy.Statement.filter((s) => s.Sid !== 'EchoWritesTheMainTable');
  writeFileSync(join(dir, 'fixture.template.json'), JSON.stringify(template));
  for (const entry of readdirSync(FIXTURE)) if (entry.startsWith('asset.')) symlinkSync(join(FIXTURE, entry), join(dir, entry));
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({
      version: '48.0.0',
      artifacts: { [stackName]: { type: 'aws:cloudformation:stack', environment: 'aws://000000000000/us-east-1', properties: { templateFile: 'fixture.template.json', stackName } } },
    }),
  );
  return dir;
}

async function start(mode: IamMode, assemblyDir = FIXTURE): Promise<LocalCloud> {
  return startLocalCloud({ assemblyDir, port: 0, inMemory: true, quiet: true, schedules: false, seed: false, iam: mode, dynamodbEndpoint: inject('localServices').endpoints.dynamodb });
}

const iamLines = () => {
  const spy = vi.spyOn(process.stderr, 'write');
  return () => spy.mock.calls.map(([chunk]) => String(chunk)).filter((line) => line.startsWith('[iam] '));
};
afterEach(() => {
  vi.restoreAllMocks();
});

describe('enforce: the template as granted', () => {
  let cloud: LocalCloud;
  beforeAll(async () => {
    cloud = await start('enforce');
  });
  afterAll(async () => {
    await cloud?.stop();
  });

  const asEcho = () => ({ region: cloud.region, credentials: cloud.iam.credentialsFor(ECHO) });
  const table = () => cloud.tables.main!;

  it("refuses a DynamoDB call the role lacks with DynamoDB's AccessDeniedException naming action, resource and role", async () => {
    // Arrange: Echo may PutItem/GetItem on the main table, not Query its index.
    const db = new DynamoDBClient({ ...asEcho(), endpoint: cloud.endpoints.dynamodb });
    const lines = iamLines();
    // Act
    const error = await db.send(new QueryCommand({ TableName: table(), IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': { S: 'x' } } })).catch((e: Error) => e);
    // Assess
    expect(error).toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
    expect((error as Error).message).toBe(
      `User: arn:aws:sts::000000000000:assumed-role/Payplane-fixture-FunctionRole5D4B6A21/Payplane-fixture-${ECHO} is not authorized to perform: dynamodb:Query ` +
        `on resource: arn:aws:dynamodb:us-east-1:000000000000:table/${table()}/index/gsi1 because no identity-based policy allows the dynamodb:Query action`,
    );
    expect(lines()).toEqual([expect.stringMatching(new RegExp(`^\\[iam\\] REFUSED ${ECHO}: User: .* dynamodb:Query on resource: .*/index/gsi1 because`))]);
  });

  it('serves what the role grants, with the table key used through DynamoDB only', async () => {
    // Arrange
    const db = new DynamoDBClient({ ...asEcho(), endpoint: cloud.endpoints.dynamodb });
    const key = { pk: { S: 'IAM#granted' }, sk: { S: 'X' } };
    // Act
    await db.send(new PutItemCommand({ TableName: table(), Item: key }));
    const { Item } = await db.send(new GetItemCommand({ TableName: table(), Key: key, ConsistentRead: true }));
    // Assess
    expect(Item).toEqual(key);
  });

  it("refuses a direct kms:Decrypt under the kms:ViaService grant, and an encryption context the policy does not name, with KMS's AccessDeniedException", async () => {
    // Arrange: Echo may Encrypt/Decrypt only with the context key 'a'; its Decrypt on the table key is for DynamoDB.
    const kms = new KMSClient({ ...asEcho(), endpoint: cloud.endpoints.kms });
    const admin = new KMSClient({ region: cloud.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, endpoint: cloud.endpoints.kms });
    const { CiphertextBlob } = await admin.send(new EncryptCommand({ KeyId: cloud.kmsKeyArn, Plaintext: Buffer.from('x'), EncryptionContext: { other: 'y' } }));
    // Act
    const direct = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { other: 'y' } })).catch((e: Error) => e);
    const granted = await kms.send(new EncryptCommand({ KeyId: cloud.kmsKeyArn, Plaintext: Buffer.from('x'), EncryptionContext: { a: 'b' } }));
    // Assess
    expect(direct).toMatchObject({ name: 'AccessDeniedException' });
    expect((direct as Error).message).toMatch(new RegExp(`is not authorized to perform: kms:Decrypt on resource: ${cloud.kmsKeyArn} because no identity-based policy allows the kms:Decrypt action$`));
    expect(granted.KeyId).toBe(cloud.kmsKeyArn);
  });

  it('refuses unknown credentials as AWS does, and the operator outside docs/operator-policy.json', async () => {
    // Arrange
    const stranger = new DynamoDBClient({ region: cloud.region, endpoint: cloud.endpoints.dynamodb, credentials: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' } });
    const apigateway = new APIGatewayClient({ region: cloud.region, endpoint: cloud.endpoints.apigateway, credentials: cloud.operatorCredentials });
    // Act
    const unknown = await stranger.send(new GetItemCommand({ TableName: table(), Key: { pk: { S: 'x' }, sk: { S: 'x' } } })).catch((e: Error) => e);
    // The fixture's stage is 'dev' but the flush names another stage: outside the operator's resource.
    const otherStage = await apigateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: cloud.restApiId, stageName: 'prod' })).catch((e: Error) => e);
    const ownStage = await apigateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: cloud.restApiId, stageName: cloud.stage }));
    // Assess
    expect(unknown).toMatchObject({ name: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
    expect(otherStage).toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
    expect((otherStage as Error).message).toMatch(/assumed-role\/PayplaneOperator\/operator is not authorized to perform: apigateway:DELETE on resource: arn:aws:apigateway:us-east-1::\/restapis\/\w+\/stages\/prod\/cache\/authorizers/);
    expect(ownStage.$metadata.httpStatusCode).toBe(202);
  });
});

describe('a template with a grant removed', () => {
  it('enforce: the function is refused with DynamoDB’s error, the route answers 502 and the log names the action', async () => {
    // Arrange
    const cloud = await start('enforce', withoutTableGrant('Payplane-iam-enforce'));
    try {
      const lines = iamLines();
      // Act
      const res = await fetch(`${cloud.url}/v1/orders`, { method: 'POST', headers: { Authorization: 'Bearer good-1' }, body: JSON.stringify({ write: true }) });
      // Assess: the fixture handler does not catch, so Lambda fails and API Gateway answers 502.
      expect(res.status).toBe(502);
      expect(lines().filter((l) => l.includes('REFUSED'))).toEqual([expect.stringContaining(`REFUSED ${ECHO}: User: arn:aws:sts::000000000000:assumed-role/Payplane-iam-enforce-FunctionRole5D4B6A21/Payplane-iam-enforce-${ECHO} is not authorized to perform: dynamodb:PutItem`)]);
      expect(cloud.iamReport().principals[ECHO]!.refusals).toEqual([expect.stringMatching(/^dynamodb:PutItem arn:aws:dynamodb:.*:table\/Payplane-iam-enforce-MainTable74195DAB$/)]);
    } finally {
      await cloud.stop();
    }
  });

  it('audit: the same call is served and logged', async () => {
    // Arrange
    const cloud = await start('audit', withoutTableGrant('Payplane-iam-audit'));
    try {
      const lines = iamLines();
      // Act
      const res = await fetch(`${cloud.url}/v1/orders`, { method: 'POST', headers: { Authorization: 'Bearer good-2' }, body: JSON.stringify({ write: true }) });
      // Assess
      expect(res.status).toBe(200);
      expect(((await res.json()) as { write: { note: string } }).write.note).toBe('hello');
      expect(lines()).toEqual(expect.arrayContaining([expect.stringContaining(`[iam] AUDIT (served) ${ECHO}: User: `), expect.stringContaining('dynamodb:PutItem')]));
    } finally {
      await cloud.stop();
    }
  });
});
