import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authorize,
  AuthorizerCache,
  authorizerContext,
  evaluatePolicy,
  type PolicyDocument,
} from '../../local/apigateway-authorizer';
import { GatewayError, gatewayErrors, renderGatewayResponse, renderTemplate, type GatewayResponseDefinition, type GatewayResponseType } from '../../local/apigateway-responses';
import { buildRestApi, listRoutes, matchRoute, methodFor, parseIdentitySources, type ApiAuthorizer } from '../../local/apigateway-routes';
import { LocalStack, type CfnTemplate } from '../../local/template';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const stack = new LocalStack(JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate, {
  stackName: 'Payplane-fixture',
});
const api = buildRestApi(stack);

describe('REST API from the template', () => {
  it('builds every route from Resource ParentId/PathPart and Method, with its target function', () => {
    expect(listRoutes(api.root)).toEqual([
      { method: 'ANY', path: '/v1/files/{proxy+}', target: 'EchoFunctionA1B2C3D4' },
      { method: 'GET', path: '/v1/health', target: 'EchoFunctionA1B2C3D4' },
      { method: 'GET', path: '/v1/orders', target: 'EchoFunctionA1B2C3D4' },
      { method: 'POST', path: '/v1/orders', target: 'EchoFunctionA1B2C3D4' },
      { method: 'GET', path: '/v1/orders/{id}', target: 'EchoFunctionA1B2C3D4' },
      { method: 'POST', path: '/v1/orders/{id}/close', target: 'FailingFunction5E6F7A8B' },
    ]);
    expect(api.stage).toBe('dev');
    expect(api.id).toMatch(/^[0-9a-z]{10}$/);
  });

  it('reads the REQUEST authorizer: function, identity source and TTL', () => {
    const authorizer = api.authorizers.get('ApiKeyAuthorizer8E4C5F1A')!;
    expect(authorizer).toMatchObject({
      type: 'REQUEST',
      functionLogicalId: 'AuthorizerFunction0D7E1A3B',
      identitySources: [{ kind: 'header', name: 'Authorization' }],
      ttlSeconds: 300,
    });
    const method = methodFor(matchRoute(api.root, '/v1/orders')!.resource, 'GET')!;
    expect(method).toMatchObject({ authorizationType: 'CUSTOM', authorizerLogicalId: 'ApiKeyAuthorizer8E4C5F1A' });
    expect(methodFor(matchRoute(api.root, '/v1/health')!.resource, 'GET')!.authorizationType).toBe('NONE');
  });

  it('parses identity sources of every kind and refuses unknown ones', () => {
    expect(parseIdentitySources('method.request.header.Authorization, method.request.querystring.token,stageVariables.s, context.c')).toEqual([
      { kind: 'header', name: 'Authorization' },
      { kind: 'querystring', name: 'token' },
      { kind: 'stageVariables', name: 's' },
      { kind: 'context', name: 'c' },
    ]);
    expect(() => parseIdentitySources('header.Authorization')).toThrow(/not understood/);
  });

  it('matches literal parts before {param}, {param} before {greedy+}; parameters stay encoded (REST v1)', () => {
    expect(matchRoute(api.root, '/v1/orders')!.resource.path).toBe('/v1/orders');
    expect(matchRoute(api.root, '/v1/orders/')!.resource.path).toBe('/v1/orders');
    const byId = matchRoute(api.root, '/v1/orders/ord%20123')!;
    expect(byId.resource.path).toBe('/v1/orders/{id}');
    expect(byId.pathParameters).toEqual({ id: 'ord%20123' });
    expect(matchRoute(api.root, '/v1/orders/ord_1/close')!.pathParameters).toEqual({ id: 'ord_1' });
    expect(matchRoute(api.root, '/v1/files/a/b/c.txt')).toMatchObject({ resource: { path: '/v1/files/{proxy+}' }, pathParameters: { proxy: 'a/b/c.txt' } });
    expect(matchRoute(api.root, '/v1/orders/ord_1/close/extra')).toBeUndefined();
    expect(matchRoute(api.root, '/v2')).toBeUndefined();
    // A resource without that method (or ANY) is "no route" for API Gateway too.
    expect(methodFor(matchRoute(api.root, '/v1/orders/ord_1/close')!.resource, 'GET')).toBeUndefined();
    expect(methodFor(matchRoute(api.root, '/v1/files/x')!.resource, 'DELETE')!.httpMethod).toBe('ANY');
  });
});

describe('gateway responses', () => {
  const definitions = api.gatewayResponses;
  const render = (error: GatewayError, defs: ReadonlyMap<GatewayResponseType, GatewayResponseDefinition> = definitions) =>
    renderGatewayResponse(defs, error, {
      context: { requestId: 'req-1', stage: 'dev' },
      request: { headers: { 'X-Caller': 'me' } },
    });

  it('uses the template response of the type: status, template with $context, header parameters', () => {
    const out = render(gatewayErrors.unauthorized());
    expect(out.statusCode).toBe(401);
    expect(JSON.parse(out.body)).toEqual({
      error: { type: 'authentication_error', code: 'unauthorized', message: 'Unauthorized', request_id: 'req-1' },
    });
    expect(out.headers).toMatchObject({ 'Request-Id': 'req-1', 'X-Fixture': 'yes', 'x-amzn-ErrorType': 'UnauthorizedException' });
  });

  it('falls back to DEFAULT_4XX/DEFAULT_5XX of the template, keeping the type status', () => {
    const throttled = render(new GatewayError('THROTTLED', 'Too Many Requests'));
    expect(throttled.statusCode).toBe(429);
    expect(JSON.parse(throttled.body).error).toMatchObject({ code: 'bad_request', message: 'Too Many Requests' });
    const lambda = render(gatewayErrors.lambdaFailure());
    expect(lambda.statusCode).toBe(502);
    expect(JSON.parse(lambda.body).error).toMatchObject({ code: 'internal_error', message: 'Internal server error' });
    expect(lambda.headers['x-amzn-ErrorType']).toBe('InternalServerErrorException');
  });

  it("falls back to API Gateway's built-in defaults without template responses", () => {
    const none = new Map<GatewayResponseType, GatewayResponseDefinition>();
    const missing = render(gatewayErrors.missingAuthenticationToken(), none);
    expect(missing).toMatchObject({ statusCode: 403, body: '{"message":"Missing Authentication Token"}' });
    expect(render(gatewayErrors.lambdaFailure(), none)).toMatchObject({ statusCode: 502, body: '{"message":"Internal server error"}' });
    // Authorizer configuration errors carry a null message.
    expect(render(gatewayErrors.authorizerConfiguration(), none)).toMatchObject({ statusCode: 500, body: '{"message":null}' });
    expect(render(gatewayErrors.requestTooLarge(), none).statusCode).toBe(413);
  });

  it('lets a DEFAULT_4XX with a StatusCode change the status of 4XX types it stands in for', () => {
    const defs = new Map<GatewayResponseType, GatewayResponseDefinition>([
      ['DEFAULT_4XX', { type: 'DEFAULT_4XX', statusCode: 400, parameters: { 'gatewayresponse.header.X-Who': 'method.request.header.x-caller' }, templates: {} }],
    ]);
    const out = render(new GatewayError('THROTTLED', 'slow down'), defs);
    expect(out.statusCode).toBe(400);
    expect(out.headers['X-Who']).toBe('me');
    expect(out.body).toBe('{"message":"slow down"}');
  });

  it('renders $context and ${context} variables; unknown ones become empty', () => {
    expect(renderTemplate('{"id":"$context.requestId","s":"${context.stage}x","e":"$context.nope.deeper"}', { requestId: 'r', stage: 'dev' })).toBe(
      '{"id":"r","s":"devx","e":""}',
    );
  });
});

describe('authorizer policies and cache', () => {
  const arn = 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/v1/orders/ord_1';
  const policy = (effect: string, resource: string | string[], action: string | string[] = 'execute-api:Invoke'): PolicyDocument => ({
    Version: '2012-10-17',
    Statement: [{ Effect: effect, Action: action, Resource: resource }],
  });

  it('allows with * wildcards across path segments, and refuses what no statement allows', () => {
    expect(evaluatePolicy(policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/*/*'), arn)).toBe('Allow');
    expect(evaluatePolicy(policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/v1/orders/*'), arn)).toBe('Allow');
    expect(evaluatePolicy(policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/POST/*'), arn)).toBe('NoMatch');
    expect(evaluatePolicy(policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/v1/orders'), arn)).toBe('NoMatch');
    expect(evaluatePolicy(policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/v1/orders/ord_?'), arn)).toBe('Allow');
    expect(evaluatePolicy(policy('Allow', '*', 'execute-api:*'), arn)).toBe('Allow');
    expect(evaluatePolicy(policy('Allow', '*', 'EXECUTE-API:invoke'), arn)).toBe('Allow');
    expect(evaluatePolicy(policy('Allow', '*', 's3:GetObject'), arn)).toBe('NoMatch');
  });

  it('lets an explicit Deny win over any Allow', () => {
    const doc: PolicyDocument = {
      Statement: [
        { Effect: 'Allow', Action: 'execute-api:Invoke', Resource: '*' },
        { Effect: 'Deny', Action: 'execute-api:Invoke', Resource: ['arn:aws:execute-api:*:*:abc123/dev/GET/v1/orders/*'] },
      ],
    };
    expect(evaluatePolicy(doc, arn)).toBe('Deny');
    expect(evaluatePolicy(doc, arn.replace('/GET/', '/POST/'))).toBe('Allow');
    expect(evaluatePolicy({ Statement: { Effect: 'Allow', Action: '*', NotResource: arn } }, arn)).toBe('NoMatch');
  });

  const authorizer: ApiAuthorizer = {
    logicalId: 'A',
    id: 'a1',
    name: 'A',
    type: 'REQUEST',
    functionLogicalId: 'Fn',
    identitySources: [{ kind: 'header', name: 'Authorization' }],
    ttlSeconds: 300,
  };
  const request = (auth?: string) => ({
    headers: (auth === undefined ? {} : { authorization: auth }) as Record<string, string>,
    queryStringParameters: {},
    stageVariables: {},
    context: {},
  });
  const allowAll = {
    principalId: 'p',
    policyDocument: policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:abc123/dev/*/*'),
    context: { merchantId: 'mch_1', livemode: false, n: 1 },
  };

  it('answers 401 without invoking when the identity source is missing or empty', async () => {
    let calls = 0;
    const invoke = async () => {
      calls++;
      return { ok: true as const, payload: allowAll };
    };
    for (const auth of [undefined, '', '   ']) {
      await expect(authorize(authorizer, new AuthorizerCache(), request(auth), arn, invoke)).rejects.toMatchObject({ type: 'UNAUTHORIZED' });
    }
    expect(calls).toBe(0);
  });

  it('caches per identity value for the TTL, re-evaluating the cached policy for each method ARN', async () => {
    // Prepare: a clock we move, an authorizer whose policy names one route only.
    let now = 1_000_000;
    const cache = new AuthorizerCache(() => now);
    let calls = 0;
    const narrow = { principalId: 'p', policyDocument: policy('Allow', arn) };
    const invoke = async () => {
      calls++;
      return { ok: true as const, payload: narrow };
    };
    // Act + Assess
    expect((await authorize(authorizer, cache, request('Bearer k1'), arn, invoke)).cached).toBe(false);
    expect((await authorize(authorizer, cache, request('Bearer k1'), arn, invoke)).cached).toBe(true);
    await expect(authorize(authorizer, cache, request('Bearer k1'), arn.replace('ord_1', 'ord_2'), invoke)).rejects.toMatchObject({
      type: 'ACCESS_DENIED',
      gatewayMessage: 'User is not authorized to access this resource',
    });
    expect(calls).toBe(1);
    await authorize(authorizer, cache, request('Bearer k2'), arn, invoke);
    expect(calls).toBe(2);
    now += 300_001;
    await authorize(authorizer, cache, request('Bearer k1'), arn, invoke);
    expect(calls).toBe(3);
    expect(cache.flush()).toBe(2);
    await authorize(authorizer, cache, request('Bearer k1'), arn, invoke);
    expect(calls).toBe(4);
  });

  it("maps 'Unauthorized' to 401, other errors and invalid output to 500, Deny to 403", async () => {
    const run = (result: { ok: true; payload: unknown } | { ok: false; errorMessage: string }) =>
      authorize(authorizer, new AuthorizerCache(), request('Bearer x'), arn, async () => result);
    await expect(run({ ok: false, errorMessage: 'Unauthorized' })).rejects.toMatchObject({ type: 'UNAUTHORIZED' });
    await expect(run({ ok: false, errorMessage: 'boom' })).rejects.toMatchObject({ type: 'AUTHORIZER_CONFIGURATION_ERROR', gatewayMessage: null });
    await expect(run({ ok: true, payload: { principalId: 'p' } })).rejects.toMatchObject({ type: 'AUTHORIZER_CONFIGURATION_ERROR' });
    await expect(run({ ok: true, payload: { ...allowAll, context: { nested: { no: 1 } } } })).rejects.toMatchObject({
      type: 'AUTHORIZER_CONFIGURATION_ERROR',
    });
    await expect(run({ ok: true, payload: { principalId: 'p', policyDocument: policy('Deny', '*') } })).rejects.toMatchObject({
      type: 'ACCESS_DENIED',
      gatewayMessage: 'User is not authorized to access this resource with an explicit deny',
    });
  });

  it('calls the authorizer even without identity when caching is off (TTL 0)', async () => {
    let calls = 0;
    await authorize({ ...authorizer, ttlSeconds: 0 }, new AuthorizerCache(), request(undefined), arn, async () => {
      calls++;
      return { ok: true, payload: allowAll };
    });
    expect(calls).toBe(1);
  });

  it('passes context values to the integration as strings, with principalId', () => {
    expect(authorizerContext(allowAll, 12.4)).toEqual({ merchantId: 'mch_1', livemode: 'false', n: '1', principalId: 'p', integrationLatency: 12 });
  });
});
