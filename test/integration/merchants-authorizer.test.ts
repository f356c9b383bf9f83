import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMerchant, createRestrictedKey, rollKey, type CreatedMerchant } from '../../functions/merchants/service';
import { merchantsDb, type MerchantsDb } from './merchants-dynamodb';
import { TEST_BY } from '../actors';

type Handler = (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

let ddb: MerchantsDb;
let handler: Handler;
let merchant: CreatedMerchant;
let logs: string[] = [];

beforeAll(async () => {
  ddb = await merchantsDb();
  // Prepare: the environment the template (or the local cloud) gives the function, then a cold start.
  Object.assign(process.env, {
    TABLE_NAME: ddb.tableName,
    AWS_REGION: ddb.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
    POWERTOOLS_LOG_LEVEL: 'INFO',
  });
  vi.resetModules();
  (await import('../../functions/commons/clients')).resetClients();
  const fn = (await import('../../functions/handlers/authorizer')).handler;
  handler = (e) => fn(e, {} as Context);
  merchant = await createMerchant(ddb.deps, { name: 'Authorizer test' }, {}, TEST_BY);
}, 60_000);
afterAll(() => ddb?.stop());

// Capture what the function logs, to prove a key never reaches the logs.
const write = process.stdout.write.bind(process.stdout);
beforeAll(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    logs.push(String(chunk));
    return write(chunk, ...(rest as []));
  });
});
afterEach(() => {
  logs = [];
});

/** A REQUEST authorizer event as API Gateway (REST, v1) sends it for GET /v1/orders/{id}. */
function event(headers: Record<string, string> | null, path = '/v1/orders/ord_123'): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: `arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/GET${path}`,
    resource: '/v1/orders/{id}',
    path,
    httpMethod: 'GET',
    headers,
    multiValueHeaders: headers && Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    pathParameters: { id: 'ord_123' },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: 'GET',
      identity: { sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' } as APIGatewayRequestAuthorizerEvent['requestContext']['identity'],
      path: `/dev${path}`,
      stage: 'dev',
      requestId: 'c0ffee00-0000-4000-8000-000000000001',
      requestTimeEpoch: Date.now(),
      resourceId: 'abc123',
      resourcePath: '/v1/orders/{id}',
    },
  };
}

describe('authorizer', () => {
  it('allows a valid key for the whole API with the merchant in the context', async () => {
    // Act
    const result = await handler(event({ Host: 'api.example.com', authorization: `Bearer ${merchant.secretKey.reveal()}` }));
    // Assess
    expect(result).toEqual({
      principalId: merchant.merchantId,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/*/*' },
        ],
      },
      context: { merchantId: merchant.merchantId, keyId: merchant.keyId, livemode: 'false', scopes: '*' },
      usageIdentifierKey: `payplane-usage-${merchant.merchantId}`,
    });
    const logged = logs.join('');
    expect(logged).toContain(merchant.keyId);
    expect(logged).not.toContain(merchant.secretKey.reveal().slice(8));
  });

  it("allows a restricted key with its own scopes in the context, and the merchant's usage key", async () => {
    // Prepare
    const rk = await createRestrictedKey(ddb.deps, { merchantId: merchant.merchantId, scopes: 'orders:read,refunds:write' }, TEST_BY);
    // Act
    const result = await handler(event({ authorization: `Bearer ${rk.secretKey.reveal()}` }));
    // Assess
    expect(result.context).toEqual({ merchantId: merchant.merchantId, keyId: rk.keyId, livemode: 'false', scopes: 'orders:read,refunds:write' });
    expect(result.usageIdentifierKey).toBe(`payplane-usage-${merchant.merchantId}`);
  });

  it('publishes the DynamoDB calls and read units it consumed as a CloudWatch (EMF) metric', async () => {
    // Act
    await handler(event({ authorization: `Bearer ${merchant.secretKey.reveal()}` }));
    // Assess: one EMF line for the invocation, with the capacity DynamoDB reported
    const emf = logs.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{"_aws":')).map((l) => JSON.parse(l));
    expect(emf).toHaveLength(1);
    expect(emf[0]._aws.CloudWatchMetrics[0].Namespace).toBe('Payplane');
    expect(emf[0].DynamoDBCalls).toBeGreaterThanOrEqual(1);
    expect(emf[0].DynamoDBReadUnits).toBeGreaterThan(0);
    expect(emf[0].DynamoDBWriteUnits).toBe(0);
  });

  it('reads the header whatever its case', async () => {
    for (const name of ['Authorization', 'AUTHORIZATION', 'authorization']) {
      const result = await handler(event({ [name]: `Bearer ${merchant.secretKey.reveal()}` }));
      expect(result.principalId).toBe(merchant.merchantId);
    }
  });

  it.each([
    ['no headers at all', null],
    ['no Authorization header', { Accept: 'application/json' }],
    ['a malformed header', { Authorization: 'Basic dXNlcjpwYXNz' }],
    ['a key of the wrong format', { Authorization: 'Bearer sk_test_short' }],
    ['an unknown key', { Authorization: `Bearer sk_test_${'Q'.repeat(32)}` }],
  ])('answers 401 for %s', async (_, headers) => {
    await expect(handler(event(headers))).rejects.toThrow(new Error('Unauthorized'));
    for (const value of Object.values(headers ?? {})) expect(logs.join('')).not.toContain(value);
  });

  it('answers 401 for a revoked key and logs its id, not the key', async () => {
    // Prepare
    const created = await createMerchant(ddb.deps, { name: 'Revoked' }, {}, TEST_BY);
    await rollKey(ddb.deps, { merchantId: created.merchantId }, TEST_BY);
    logs = [];
    // Act
    const attempt = handler(event({ Authorization: `Bearer ${created.secretKey.reveal()}` }));
    // Assess
    await expect(attempt).rejects.toThrow(/^Unauthorized$/);
    const logged = logs.join('');
    expect(logged).toContain('api_key_revoked');
    expect(logged).toContain(created.keyId);
    expect(logged).not.toContain(created.secretKey.reveal().slice(8));
  });
});
