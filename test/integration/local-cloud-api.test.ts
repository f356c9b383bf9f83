import { join } from 'node:path';
import { APIGatewayClient, FlushStageAuthorizersCacheCommand, NotFoundException } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';

/**
 * The local cloud end to end over HTTP, running the hand-made fixture assembly
 * (test/integration/fixtures/local-cloud): its handlers misbehave on demand, which the real ones
 * must not. Tables go into the integration tier's DynamoDB Local, under the fixture's stack name.
 */
const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

let cloud: LocalCloud;
let url: string;

beforeAll(async () => {
  cloud = await startLocalCloud({
    assemblyDir: FIXTURE,
    port: 0,
    inMemory: true,
    quiet: true,
    schedules: false,
    seed: false,
    dynamodbEndpoint: inject('localServices').endpoints.dynamodb,
  });
  url = cloud.url;
});
afterAll(async () => {
  await cloud?.stop();
});

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const call = async (path: string, init: RequestInit = {}) => {
  const response = await fetch(`${url}${path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body: body as Record<string, any> };
};
const authorizerCalls = () => cloud.stats().lambda.AuthorizerFunction0D7E1A3B!.invocations;

describe('proxy event and Lambda environment', () => {
  it('builds a REST API (v1) proxy event from the request', async () => {
    // Act
    const res = await call('/v1/orders/ord%5F1?expand=a&expand=b&limit=5', { headers: { ...bearer('good-event'), 'X-Custom': 'one' } });
    // Assess
    expect(res.status).toBe(200);
    const event = res.body.event;
    expect(event).toMatchObject({
      resource: '/v1/orders/{id}',
      path: '/v1/orders/ord%5F1',
      httpMethod: 'GET',
      pathParameters: { id: 'ord%5F1' },
      queryStringParameters: { expand: 'b', limit: '5' },
      multiValueQueryStringParameters: { expand: ['a', 'b'], limit: ['5'] },
      stageVariables: null,
      body: null,
      isBase64Encoded: false,
    });
    expect(event.headers).toMatchObject({ Authorization: 'Bearer good-event', 'X-Custom': 'one', 'X-Forwarded-Proto': 'http', 'X-Forwarded-For': '127.0.0.1' });
    expect(event.multiValueHeaders['X-Custom']).toEqual(['one']);
    const requestId = res.headers.get('x-amzn-requestid');
    expect(event.requestContext).toMatchObject({
      requestId,
      stage: 'dev',
      path: '/dev/v1/orders/ord%5F1',
      resourcePath: '/v1/orders/{id}',
      httpMethod: 'GET',
      apiId: cloud.restApiId,
      accountId: '000000000000',
      domainName: new URL(url).host,
      identity: { sourceIp: '127.0.0.1' },
      authorizer: { principalId: 'user', merchantId: 'mch_good-event', livemode: 'false', keyId: 'key_1' },
      // REST APIs (v1) keep the path and its parameters percent-encoded as sent.
    });
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    // The authorizer got a REQUEST event whose methodArn names the real path.
    expect(JSON.parse(event.requestContext.authorizer.event)).toEqual({
      type: 'REQUEST',
      methodArn: `arn:aws:execute-api:us-east-1:000000000000:${cloud.restApiId}/dev/GET/v1/orders/ord%5F1`,
      resource: '/v1/orders/{id}',
      path: '/v1/orders/ord%5F1',
      httpMethod: 'GET',
    });
  });

  it('passes a POST body as a string and returns multi-value response headers', async () => {
    const res = await fetch(`${url}/v1/orders`, {
      method: 'POST',
      headers: { ...bearer('good-post'), 'Content-Type': 'application/json' },
      body: JSON.stringify({ amount: 1000 }),
    });
    const payload = (await res.json()) as { event: { body: string; isBase64Encoded: boolean } };
    expect(payload.event.body).toBe('{"amount":1000}');
    expect(payload.event.isBase64Encoded).toBe(false);
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(res.headers.get('x-echo')).toBe('true');
  });

  it("gives each function the template's environment, resolved, plus Lambda's own variables", async () => {
    const { body } = await call('/v1/health');
    const env = body.env;
    expect(env).toMatchObject({
      TABLE_NAME: 'Payplane-fixture-MainTable74195DAB',
      IDEMPOTENCY_TABLE_NAME: 'Payplane-fixture-IdempotencyTable1F6A6C2B',
      KMS_KEY_ARN: cloud.kmsKeyArn,
      STAGE: 'dev',
      NODE_OPTIONS: '--enable-source-maps',
      SELF_ARN_SUB: 'arn:aws:dynamodb:us-east-1:000000000000:table/Payplane-fixture-MainTable74195DAB',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_NAME: 'Payplane-fixture-EchoFunctionA1B2C3D4',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
      AWS_ENDPOINT_URL_KMS: cloud.endpoints.kms,
      LAMBDA_TASK_ROOT: join(FIXTURE, 'asset.fixture-echo'),
      _HANDLER: 'index.handler',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      // Local-only, at run time: the template has no such variable (an infra test checks every stage's).
      PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS: '1',
    });
    expect(cloud.runtime.get('EchoFunctionA1B2C3D4').definition.environment.PAYPLANE_LOCAL_ALLOW_LOOPBACK_WEBHOOKS).toBeUndefined();
    expect(cloud.kmsKeyArn).toMatch(/^arn:aws:kms:us-east-1:000000000000:key\//);
    // In memory, the local SES and SNS write to a temporary outbox of this run, never .payplane/outbox/.
    expect(cloud.endpoints.sesv2).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(cloud.outbox).toContain('payplane-outbox-');
    // StreamArn is the table's real stream, read back from DynamoDB Local.
    expect(env.STREAM_ARN).toMatch(/table\/Payplane-fixture-MainTable74195DAB\/stream\/\d{4}-/);
    expect(body.context).toMatchObject({
      functionName: 'Payplane-fixture-EchoFunctionA1B2C3D4',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:Payplane-fixture-EchoFunctionA1B2C3D4',
      memoryLimitInMB: '256',
      logGroupName: '/aws/lambda/Payplane-fixture-EchoFunctionA1B2C3D4',
    });
    expect(body.context.remaining).toBeGreaterThan(9000);
    expect(body.context.remaining).toBeLessThanOrEqual(10_000);
  });

  it('lets handlers reach DynamoDB and KMS through the endpoints it set', async () => {
    const { status, body } = await call('/v1/orders', { method: 'POST', headers: bearer('good-write'), body: '{"write":true}' });
    expect(status).toBe(200);
    expect(body.write).toEqual({ note: 'hello', plaintext: 'secret', keyId: cloud.kmsKeyArn });
  });

  it('starts an environment on first use and reuses it afterwards', async () => {
    const before = cloud.stats().lambda.EchoFunctionA1B2C3D4!.coldStarts;
    const a = await call('/v1/health');
    const b = await call('/v1/health');
    expect(a.body.wasCold || before > 0).toBe(true);
    expect(b.body.wasCold).toBe(false);
    const stats = cloud.stats().lambda.EchoFunctionA1B2C3D4!;
    expect(stats.coldStarts).toBe(Math.max(before, 1));
    expect(stats.initDurationsMs.every((ms) => ms > 0)).toBe(true);
  });

  it('sums the metrics functions publish in the Embedded Metric Format, as CloudWatch would', async () => {
    // Prepare
    const units = () => cloud.stats().lambda.EchoFunctionA1B2C3D4!.metrics['Fixture/Units'] ?? 0;
    const before = units();
    // Act: a single value, then an array of values (EMF allows both)
    await call('/v1/orders', { method: 'POST', headers: bearer('good-write'), body: '{"emf":1.5}' });
    await call('/v1/orders', { method: 'POST', headers: bearer('good-write'), body: '{"emf":[2,3]}' });
    // Assess: log lines arrive after the response, so wait for them
    await vi.waitFor(() => expect(units() - before).toBe(6.5));
  });

  it('counts what Lambda bills and CloudWatch ingests: durations rounded up to the millisecond, bytes logged', async () => {
    // Prepare
    const stats = () => cloud.stats().lambda.EchoFunctionA1B2C3D4!;
    const before = stats();
    // Act: the EMF line is one log line of the function's
    await call('/v1/orders', { method: 'POST', headers: bearer('good-write'), body: '{"emf":1}' });
    // Assess
    await vi.waitFor(() => expect(stats().logBytes - before.logBytes).toBeGreaterThan('{"_aws":'.length));
    const after = stats();
    const invocations = after.invocations - before.invocations;
    const billed = after.billedDurationMs - before.billedDurationMs;
    const measured = after.totalDurationMs - before.totalDurationMs;
    expect(Number.isInteger(billed)).toBe(true);
    expect(billed).toBeGreaterThanOrEqual(measured);
    expect(billed).toBeLessThanOrEqual(measured + invocations);
  });

  it('serves a route without authorizer to callers without credentials', async () => {
    const res = await call('/v1/health');
    expect(res.status).toBe(200);
    expect(res.body.event.requestContext.authorizer).toBeUndefined();
  });

  it('routes {proxy+} greedily and ANY to every method', async () => {
    const res = await call('/v1/files/a/b/c.txt', { method: 'DELETE', headers: bearer('good-files') });
    expect(res.status).toBe(200);
    expect(res.body.event).toMatchObject({ resource: '/v1/files/{proxy+}', httpMethod: 'DELETE', pathParameters: { proxy: 'a/b/c.txt' } });
  });
});

describe('gateway responses', () => {
  it('answers an unknown route, or a path outside the stage, with MISSING_AUTHENTICATION_TOKEN from the template', async () => {
    for (const path of ['/v1/nope', '/v1/orders/ord_1/close']) {
      const res = await call(path, { headers: bearer('good-1') });
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        error: { type: 'invalid_request_error', code: 'route_not_found', message: 'Missing Authentication Token', request_id: res.headers.get('x-amzn-requestid') },
      });
      expect(res.headers.get('request-id')).toBe(res.headers.get('x-amzn-requestid'));
    }
    const outside = await fetch(`${new URL(url).origin}/v1/orders`);
    expect(outside.status).toBe(404);
    expect(outside.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });

  it('refuses bodies over 10 MB with REQUEST_TOO_LARGE', async () => {
    const res = await call('/v1/orders', { method: 'POST', headers: bearer('good-big'), body: Buffer.alloc(10 * 1024 * 1024 + 1, 97) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('body_too_large');
  });

  it('turns a handler exception, a malformed result and a timeout into 502 through DEFAULT_5XX', async () => {
    for (const mode of ['throw', 'malformed', 'timeout']) {
      const res = await call(`/v1/orders/ord_1/close?mode=${mode}`, { method: 'POST', headers: bearer('good-fail') });
      expect(res.status, mode).toBe(502);
      expect(res.body.error).toMatchObject({ type: 'api_error', code: 'internal_error', message: 'Internal server error' });
      expect(res.headers.get('x-amzn-errortype')).toBe('InternalServerErrorException');
    }
    const ok = await call('/v1/orders/ord_1/close', { method: 'POST', headers: bearer('good-fail') });
    expect(ok.status).toBe(201);
    expect(ok.body).toBe('closed');
  });

  it('replaces an environment that timed out or exited: the next call is a cold start', async () => {
    const coldStarts = () => cloud.stats().lambda.FailingFunction5E6F7A8B!.coldStarts;
    await call('/v1/orders/ord_1/close', { method: 'POST', headers: bearer('good-fail') });
    const before = coldStarts();
    const exit = await call('/v1/orders/ord_1/close?mode=exit', { method: 'POST', headers: bearer('good-fail') });
    expect(exit.status).toBe(502);
    const after = await call('/v1/orders/ord_1/close', { method: 'POST', headers: bearer('good-fail') });
    expect(after.status).toBe(201);
    expect(coldStarts()).toBe(before + 1);
  });

  it('decodes base64 bodies of binary responses', async () => {
    const res = await fetch(`${url}/v1/orders/ord_1/close?mode=binary`, { method: 'POST', headers: bearer('good-bin') });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([0, 1, 2, 255]);
  });
});

describe('REQUEST authorizer', () => {
  it('answers 401 without invoking the authorizer when Authorization is missing', async () => {
    const before = authorizerCalls();
    const res = await call('/v1/orders');
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ code: 'unauthorized', message: 'Unauthorized' });
    expect(authorizerCalls()).toBe(before);
  });

  it("maps the authorizer's 'Unauthorized' to 401, a crash or bad output to 500, a Deny to 403", async () => {
    expect((await call('/v1/orders', { headers: bearer('nobody') })).status).toBe(401);
    const boom = await call('/v1/orders', { headers: bearer('boom') });
    expect(boom.status).toBe(500);
    expect(boom.headers.get('x-amzn-errortype')).toBe('AuthorizerConfigurationException');
    expect(boom.body.error).toMatchObject({ code: 'internal_error', message: null });
    expect((await call('/v1/orders', { headers: bearer('malformed') })).status).toBe(500);
    const deny = await call('/v1/orders', { headers: bearer('deny') });
    expect(deny.status).toBe(403);
    expect(deny.body.error).toMatchObject({ code: 'access_denied', message: 'User is not authorized to access this resource with an explicit deny' });
  });

  it('caches by identity value and evaluates the cached policy against each route', async () => {
    // Prepare
    const before = authorizerCalls();
    // Act: the narrow policy allows GET /v1/orders only.
    const first = await call('/v1/orders', { headers: bearer('narrow') });
    const again = await call('/v1/orders', { headers: bearer('narrow') });
    const other = await call('/v1/orders/ord_1', { headers: bearer('narrow') });
    // Assess
    expect([first.status, again.status, other.status]).toEqual([200, 200, 403]);
    expect(other.body.error.message).toBe('User is not authorized to access this resource');
    expect(authorizerCalls()).toBe(before + 1);
  });

  it('flushes the cache through the API Gateway control plane (FlushStageAuthorizersCache)', async () => {
    // Prepare
    const apigateway = new APIGatewayClient({ endpoint: cloud.endpoints.apigateway, region: 'us-east-1', credentials });
    await call('/v1/orders', { headers: bearer('good-flush') });
    const before = authorizerCalls();
    await call('/v1/orders', { headers: bearer('good-flush') });
    expect(authorizerCalls()).toBe(before);
    // Act
    await apigateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: cloud.restApiId, stageName: 'dev' }));
    await call('/v1/orders', { headers: bearer('good-flush') });
    // Assess
    expect(authorizerCalls()).toBe(before + 1);
    await expect(apigateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: 'nope', stageName: 'dev' }))).rejects.toBeInstanceOf(NotFoundException);
    await expect(apigateway.send(new FlushStageAuthorizersCacheCommand({ restApiId: cloud.restApiId, stageName: 'prod' }))).rejects.toBeInstanceOf(
      NotFoundException,
    );
    apigateway.destroy();
  });
});

describe('schedules and admin endpoints', () => {
  it('invokes the rule target with a Scheduled Event when triggered', async () => {
    // Act
    const res = await fetch(`${cloud.endpoints.admin}/__schedules/ExpireScheduleRule7777AAAA/trigger`, { method: 'POST' });
    const run = (await res.json()) as { results: { ok: boolean; payload: { recorded: string } }[] };
    // Assess: the fixture job recorded the event it received in the main table.
    expect(run.results).toHaveLength(1);
    expect(run.results[0]!.ok).toBe(true);
    const db = new DynamoDBClient({ endpoint: cloud.endpoints.dynamodb, region: 'us-east-1', credentials });
    const { Item } = await db.send(
      new GetItemCommand({ TableName: cloud.tables.main!, Key: { pk: { S: `SCHEDULED#${run.results[0]!.payload.recorded}` }, sk: { S: 'EVENT' } } }),
    );
    db.destroy();
    const event = JSON.parse(Item!.event!.S!);
    expect(event).toMatchObject({
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      resources: ['arn:aws:events:us-east-1:000000000000:rule/Payplane-fixture-ExpireScheduleRule7777AAAA'],
    });
  });

  it('reports stats, and answers 501 for services it does not emulate', async () => {
    const stats = (await (await fetch(`${cloud.endpoints.admin}/__stats`)).json()) as ReturnType<LocalCloud['stats']>;
    expect(stats.api.requests).toBeGreaterThan(10);
    expect(stats.kms.Encrypt).toBeGreaterThanOrEqual(1);
    expect(stats.triggers.schedules).toMatchObject({ runs: 1 });
    const sqs = await fetch(cloud.endpoints.admin, { method: 'POST', headers: { 'X-Amz-Target': 'AmazonSQS.SendMessage' }, body: '{}' });
    expect(sqs.status).toBe(501);
    expect(((await sqs.json()) as { message: string }).message).toContain('AmazonSQS.SendMessage');
  });
});
