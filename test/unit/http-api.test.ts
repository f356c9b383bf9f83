import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api } from '../../functions/http/api';

/** A REST proxy event as API Gateway hands it after the authorizer, with `headers` on top. */
const event = (httpMethod: string, headers: Record<string, string>): APIGatewayProxyEvent =>
  ({
    resource: '/v1/things',
    path: '/v1/things',
    httpMethod,
    headers,
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: httpMethod === 'POST' ? '{}' : null,
    isBase64Encoded: false,
    requestContext: { requestId: 'req_1', authorizer: { merchantId: 'mch_1', keyId: 'key_1' } },
  }) as unknown as APIGatewayProxyEvent;

const context = { getRemainingTimeInMillis: () => 5000, functionName: 'test' } as unknown as Context;

describe('api() (read routes; POST routes use idempotentApi)', () => {
  beforeEach(() => {
    vi.stubEnv('TABLE_NAME', 'payplane-test-main');
    vi.stubEnv('PUBLIC_BASE_URL', 'http://127.0.0.1:3000/test');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('answers a GET, with its Request-Id', async () => {
    // Prepare
    const operation = vi.fn(async () => ({ status: 200, body: { ok: true } }));
    // Act
    const res = (await api(operation)(event('GET', {}), context)) as APIGatewayProxyResult;
    // Assess
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['Request-Id']).toBe('req_1');
    expect(JSON.parse(res.body)).toEqual({ ok: true });
  });

  it('refuses a POST with an Idempotency-Key before the operation runs, instead of ignoring the key', async () => {
    // Prepare
    const operation = vi.fn(async () => ({ status: 201, body: {} }));
    // Act
    const res = (await api(operation)(event('POST', { 'Idempotency-Key': 'k1' }), context)) as APIGatewayProxyResult;
    // Assess: a 500 whose details stay in the log; the operation never ran without the key's protection
    expect(operation).not.toHaveBeenCalled();
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body).error.code).toBe('internal_error');
  });

  it('runs a POST without an Idempotency-Key, as idempotentApi does', async () => {
    const operation = vi.fn(async () => ({ status: 201, body: { id: 'x' } }));
    const res = (await api(operation)(event('POST', {}), context)) as APIGatewayProxyResult;
    expect(operation).toHaveBeenCalledOnce();
    expect(res.statusCode).toBe(201);
  });
});
